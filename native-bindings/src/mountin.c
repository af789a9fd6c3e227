/*
 * novabox-mountin: a volume attached to, or detached from, a RUNNING server's mount
 * namespace (`server add volume` / `server remove volume` on an ACTIVE server):
 *
 *   novabox-mountin attach PID START SOURCE TARGET ro|rw UID GID
 *   novabox-mountin detach PID START TARGET
 *
 * PID is the server's init and START its start time (field 22 of /proc/PID/stat): checked
 * after the pidfd is opened, so a reused pid is never entered. attach clones SOURCE (a
 * host directory: a volume, or a sized volume's loop mount) as a detached mount
 * (open_tree(OPEN_TREE_CLONE)), makes it read-only for "ro" (mount_setattr), enters the
 * server's mount namespace (setns(2) with the pidfd: the root becomes the server's root),
 * opens TARGET from that root with RESOLVE_IN_ROOT (a symlink inside resolves inside, never
 * out), making the directories that are missing (mode 0755, owned by UID:GID, the server's
 * root) and attaches the clone there (move_mount). detach unmounts TARGET in the server
 * (MNT_DETACH: a file still open inside keeps it until closed).
 *
 * A separate program because setns(CLONE_NEWNS) is refused to a multi-threaded process
 * (node). Errors: one line on stderr ("<step>: <strerror>"), exit status 1; bad usage 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

static int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s\n", what, strerror(err));
	return 1;
}

/* field 22 of /proc/PID/stat (start time in clock ticks), 0 if gone */
static unsigned long long start_of(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* p is at the space before field 3 (the state); start time is field 22 */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* Enter the mount namespace of PID, if it is still the process that started at START. */
static int enter(const char *pid_s, const char *start_s)
{
	pid_t pid = (pid_t)atoi(pid_s);
	unsigned long long start = strtoull(start_s, NULL, 10);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return fail("the server's process", errno);
	if (start_of(pid) != start)
		return fail("the server's process", ESRCH);
	if (setns(pidfd, CLONE_NEWNS) < 0)
		return fail("entering the server's mount namespace", errno);
	close(pidfd);
	return 0;
}

static int open_in_root(int root, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
}

/* TARGET's directory in the server, the missing ones made (owned by uid:gid) */
static int open_target(int root, const char *target, uid_t uid, gid_t gid)
{
	char prefix[PATH_MAX];
	size_t len = strlen(target);
	if (len >= sizeof(prefix) || target[0] != '/')
		return -EINVAL;
	int dir = open_in_root(root, "/");
	if (dir < 0)
		return -errno;
	size_t i = 1;
	while (i <= len) {
		size_t j = i;
		while (j < len && target[j] != '/')
			j++;
		if (j > i) {
			memcpy(prefix, target, j);
			prefix[j] = 0;
			int fd = open_in_root(root, prefix);
			if (fd < 0 && errno == ENOENT) {
				char name[NAME_MAX + 1];
				if (j - i > NAME_MAX) {
					close(dir);
					return -ENAMETOOLONG;
				}
				memcpy(name, target + i, j - i);
				name[j - i] = 0;
				if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST) {
					int e = errno;
					close(dir);
					return -e;
				}
				if (fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
					int e = errno;
					close(dir);
					return -e;
				}
				fd = open_in_root(root, prefix);
			}
			if (fd < 0) {
				int e = errno;
				close(dir);
				return -e;
			}
			close(dir);
			dir = fd;
		}
		i = j + 1;
	}
	return dir;
}

static int attach(char **argv)
{
	const char *source = argv[4], *target = argv[5];
	int ro = strcmp(argv[6], "ro") == 0;
	uid_t uid = (uid_t)strtoul(argv[7], NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[8], NULL, 10);
	/* the clone is made in the host's namespace, where SOURCE is */
	int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return fail("cloning the volume's mount", errno);
	if (ro) {
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
			return fail("making the volume's mount read-only", errno);
	}
	if (enter(argv[2], argv[3]))
		return 1;
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return fail("the server's root", errno);
	int t = open_target(root, target, uid, gid);
	if (t < 0)
		return fail("the mount path in the server", -t);
	if (syscall(SYS_move_mount, tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return fail("mounting the volume in the server", errno);
	return 0;
}

static int detach(char **argv)
{
	if (enter(argv[2], argv[3]))
		return 1;
	/* after setns the root is the server's: the path resolves inside it */
	if (umount2(argv[4], MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
		return fail("unmounting the volume in the server", errno);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 9 && strcmp(argv[1], "attach") == 0)
		return attach(argv);
	if (argc == 5 && strcmp(argv[1], "detach") == 0)
		return detach(argv);
	fprintf(stderr, "usage: novabox-mountin attach PID START SOURCE TARGET ro|rw UID GID | detach PID START TARGET\n");
	return 2;
}
