/*
 * The removal of a `run` container's directory once its init exited, as one call that
 * the CLI runs on its main thread or in libuv's thread pool (napi.c rmRunDirSync,
 * rmRunDir): the known layout only, in
 * order, each entry by name below the directory's fd, never following a symlink.
 * Anything else (a non-empty upper layer, the network's /etc files) stops it with
 * -errno and the caller walks the whole tree (src/util/rmtree.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "novabox.h"

/* What makeContainerDir, overlayfs (work/work; a volatile mount's incompat/volatile/dirty)
 * and writeState leave: files first, then directories, deepest first. Two parts that
 * touch different directories (the journal's work on ext4 is per directory: the work
 * chain runs beside the top level's entries); the directory itself goes after both. */
static const struct {
	const char *path;
	int flags;
} layout[2][6] = {
	{
		{ "rootfs", AT_REMOVEDIR },
		{ "upper", AT_REMOVEDIR },
		{ "state.json", 0 },
		{ "exit-status", 0 },
	},
	{
		{ "work/work/incompat/volatile/dirty", 0 },
		{ "work/work/incompat/volatile", AT_REMOVEDIR },
		{ "work/work/incompat", AT_REMOVEDIR },
		{ "work/work", AT_REMOVEDIR },
		{ "work", AT_REMOVEDIR },
	},
};

NB_API int nb_rm_run_dir_part(const char *dir, int part)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int err = 0;
	size_t i;

	if (part < 0 || part > 1)
		return -EINVAL;
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (i = 0; i < sizeof(layout[0]) / sizeof(layout[0][0]) && layout[part][i].path; i++) {
		if (unlinkat(dfd, layout[part][i].path, layout[part][i].flags) < 0 && errno != ENOENT) {
			err = -errno;
			break;
		}
	}
	close(dfd);
	return err;
}

NB_API int nb_rm_run_dir(const char *dir)
{
	int err = nb_rm_run_dir_part(dir, 0);

	if (err == 0)
		err = nb_rm_run_dir_part(dir, 1);
	if (err == 0 && rmdir(dir) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}
