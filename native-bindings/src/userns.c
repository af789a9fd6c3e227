/*
 * A container's own user namespace, set up by the monitor (host root) between the clone
 * and NB_EV_PID, while the init waits at NB_OP_USERNS (see spawn.c's handshake):
 *
 *   1. the id maps: /proc/<init>/uid_map and gid_map, "0 <base> <count>". Written by a
 *      process with CAP_SETUID/CAP_SETGID over the parent namespace, so setgroups(2)
 *      stays allowed inside (user_namespaces(7)): su, login and sshd need it.
 *   2. the rootfs, when the plan asks for it: each image layer is cloned as a detached
 *      mount (open_tree(OPEN_TREE_CLONE)) and idmapped into the init's namespace
 *      (mount_setattr(MOUNT_ATTR_IDMAP)), so files stored as uid 0 read as the range's
 *      base and nothing of the shared layer is ever chowned or walked. The overlay over
 *      them is made here, with the host's credentials (fsopen/fsconfig/fsmount): its
 *      trusted.overlay.* xattrs (opaque dirs) read as on any host overlay, which an
 *      overlay mounted inside the namespace would not. The lowers are named through
 *      /proc/self/fd/N: a detached mount has no other path. With a tmpfs for the
 *      writable layer (`run`), the tmpfs is made here too, its upper dir owned by the
 *      range's root.
 *   3. the word: one byte 'U' on the socket, with the overlay's mount fd (SCM_RIGHTS)
 *      for NB_OP_MOUNT_FD, which attaches it inside the init's mount namespace.
 *
 * The maps come before NB_EV_PID (nb_userns_maps: a failure is NB_EV_ERROR
 * {NB_STAGE_USERNS, errno, 0}). The rootfs comes after it, when the init asks ('M', sent
 * by NB_OP_USERNS once 'R' said the container's directories exist), so it overlaps the
 * CLI's side as the other ops do (nb_userns_serve). A failure there is the answer
 * 'E' + errno: the init's NB_OP_USERNS fails with it, and the monitor's NB_EV_OPFAIL
 * says in c which step it was (1 + the step).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/mount.h>

#include "novabox.h"
#include "internal.h"

#define MAX_LOWERS 128 /* overlayfs takes up to 500; an image of more is refused at plan time */

static int write_map(pid_t pid, const char *file, const char *map)
{
	char path[64];
	size_t len = strlen(map);
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (write(fd, map, len) != (ssize_t)len)
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

/* "0 <base> <count>": the host id of the namespace's root, or -1. */
static long map_base(const char *map)
{
	char *end;
	long base;

	if (strtol(map, &end, 10) != 0 || end == map)
		return -1;
	base = strtol(end, &end, 10);
	return base > 0 ? base : -1;
}

static int fsconfig_str(int fs, const char *key, const char *value)
{
	return (int)syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, key, value, 0);
}

/* A new tmpfs (detached) with upper/ and work/ in it (unless NULL); upper/ owned by the range's root. */
static int make_tmpfs(const char *opts, const char *upper, const char *work, long uid, long gid, int *out)
{
	char buf[256], *tok, *save = NULL;
	int fs, mnt = -1, err = 0;

	if (strlen(opts) >= sizeof(buf))
		return E2BIG;
	strcpy(buf, opts);
	fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return errno;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			err = EINVAL;
			goto out;
		}
		*eq = '\0';
		if (fsconfig_str(fs, tok, eq + 1) < 0) {
			err = errno;
			goto out;
		}
	}
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
	    (mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) < 0) {
		err = errno;
		goto out;
	}
	if (upper && (mkdirat(mnt, upper, 0755) < 0 || fchownat(mnt, upper, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		      mkdirat(mnt, work, 0700) < 0)) {
		err = errno;
		close(mnt);
		mnt = -1;
	}
out:
	close(fs);
	*out = mnt;
	return err;
}

/* An overlay over lowerdir (':'-separated), made with our (host) credentials: its fd. */
static int make_overlay(const char *lowerdir, const char *upper, const char *work, const char *flags, int *out)
{
	char fl[256], *tok, *save = NULL;
	int fs, mnt, err = 0;

	*out = -1;
	if (strlen(flags) >= sizeof(fl))
		return E2BIG;
	strcpy(fl, flags);
	fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return errno;
	if (fsconfig_str(fs, "source", "overlay") < 0 || fsconfig_str(fs, "lowerdir", lowerdir) < 0 ||
	    fsconfig_str(fs, "upperdir", upper) < 0 || fsconfig_str(fs, "workdir", work) < 0) {
		err = errno;
		goto out;
	}
	for (tok = strtok_r(fl, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, tok, NULL, 0) < 0) {
			err = errno;
			goto out;
		}
	}
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
	    (mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) < 0) {
		err = errno;
		goto out;
	}
	*out = mnt;
out:
	close(fs);
	return err;
}

struct rootfs {
	const char *upper, *work, *flags, *tmpfs, *stage;
	int lowers[MAX_LOWERS]; /* detached, idmapped clones of the layers */
	uint32_t nlow;
	long uid, gid;
};

/*
 * The layers (and the tmpfs) as detached mounts, named /proc/self/fd/N: what overlayfs
 * takes since it may clone a layer of another mount namespace (newer kernels).
 */
static int rootfs_detached(struct rootfs *r, int *out, int *step)
{
	char lowerdir[MAX_LOWERS * 24], up[PATH_MAX], wk[PATH_MAX];
	const char *upper = r->upper, *work = r->work;
	size_t at = 0;
	int tmp = -1, err;

	for (uint32_t i = 0; i < r->nlow; i++)
		at += (size_t)snprintf(lowerdir + at, sizeof(lowerdir) - at, "%s/proc/self/fd/%d", i ? ":" : "", r->lowers[i]);
	if (*r->tmpfs) {
		*step = 3;
		if ((err = make_tmpfs(r->tmpfs, r->upper, r->work, r->uid, r->gid, &tmp)))
			return err;
		snprintf(up, sizeof(up), "/proc/self/fd/%d/%s", tmp, r->upper);
		snprintf(wk, sizeof(wk), "/proc/self/fd/%d/%s", tmp, r->work);
		upper = up;
		work = wk;
	}
	*step = 2;
	err = make_overlay(lowerdir, upper, work, r->flags, out);
	if (tmp >= 0)
		close(tmp);
	return err;
}

/*
 * Older kernels (Linux 6.1's overlayfs: "failed to clone lowerpath") take only layers
 * mounted in the mounter's namespace: we enter the init's (private since its first op,
 * so nothing propagates to the host), attach a tmpfs on its rootfs directory (the
 * writable layer's own, with a tmpfs), the layers in it, make the overlay, detach them
 * all again (the overlay holds its own clones) and come back.
 */
static int rootfs_staged(struct rootfs *r, pid_t init, int *out, int *step)
{
	char path[PATH_MAX], lowerdir[MAX_LOWERS * (PATH_MAX / 8)], up[PATH_MAX], wk[PATH_MAX];
	const char *upper = r->upper, *work = r->work;
	int self, theirs, tmp = -1, err = 0;
	uint32_t attached = 0;
	size_t at = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)init);
	self = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	theirs = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || theirs < 0 || setns(theirs, CLONE_NEWNS) < 0) {
		err = errno;
		goto close_ns;
	}
	*step = 3;
	if ((err = make_tmpfs(*r->tmpfs ? r->tmpfs : "mode=0755,size=64k", *r->tmpfs ? r->upper : NULL,
			      *r->tmpfs ? r->work : NULL, r->uid, r->gid, &tmp)))
		goto back;
	if (syscall(SYS_move_mount, tmp, "", AT_FDCWD, r->stage, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		err = errno;
		goto back;
	}
	*step = 1;
	for (; attached < r->nlow; attached++) {
		snprintf(path, sizeof(path), "%s/.l%u", r->stage, attached);
		if (mkdir(path, 0700) < 0 ||
		    syscall(SYS_move_mount, r->lowers[attached], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
			err = errno;
			goto detach;
		}
		at += (size_t)snprintf(lowerdir + at, sizeof(lowerdir) - at, "%s%s", attached ? ":" : "", path);
		if (at >= sizeof(lowerdir)) {
			err = E2BIG;
			attached++;
			goto detach;
		}
	}
	if (*r->tmpfs) {
		snprintf(up, sizeof(up), "%s/%s", r->stage, r->upper);
		snprintf(wk, sizeof(wk), "%s/%s", r->stage, r->work);
		upper = up;
		work = wk;
	}
	*step = 2;
	err = make_overlay(lowerdir, upper, work, r->flags, out);
detach:
	while (attached-- > 0) {
		snprintf(path, sizeof(path), "%s/.l%u", r->stage, attached);
		umount2(path, MNT_DETACH);
	}
	umount2(r->stage, MNT_DETACH);
back:
	if (setns(self, CLONE_NEWNS) < 0) {
		/* never: we would stay in the container's mount namespace (and follow its
		 * pivot_root); better no monitor than that one */
		kill(init, SIGKILL);
		_exit(1);
	}
close_ns:
	if (tmp >= 0)
		close(tmp);
	if (self >= 0)
		close(self);
	if (theirs >= 0)
		close(theirs);
	return err;
}

/* <work>/work/incompat/volatile[/dirty]: what overlayfs leaves in a volatile mount's work dir */
static void clear_volatile_mark(const char *work)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/work/incompat/volatile/dirty", work);
	unlink(p);
	snprintf(p, sizeof(p), "%s/work/incompat/volatile", work);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/work/incompat", work);
	rmdir(p);
}

/*
 * The overlay of the plan's userns list, idmapped into the init's namespace: its mount fd
 * in *out, or errno with *step (1 a layer, 2 the overlay, 3 the tmpfs).
 */
static int make_rootfs(const void *plan, uint32_t list, pid_t init, int userns_fd, long uid, long gid, int *out, int *step)
{
	uint32_t n = nb_plan_list_len(plan, list), i;
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd };
	struct rootfs r = {
		.upper = nb_plan_list_item(plan, list, 2),
		.work = nb_plan_list_item(plan, list, 3),
		.flags = nb_plan_list_item(plan, list, 4),
		.tmpfs = nb_plan_list_item(plan, list, 5),
		.stage = nb_plan_list_item(plan, list, 6),
		.nlow = n - NB_USERNS_LOWERS,
		.uid = uid,
		.gid = gid,
	};
	int err = 0;

	*out = -1;
	*step = 1;
	if (r.nlow > MAX_LOWERS)
		return E2BIG;
	for (i = 0; i < r.nlow; i++)
		r.lowers[i] = -1;
	for (i = 0; i < r.nlow; i++) {
		r.lowers[i] = (int)syscall(SYS_open_tree, AT_FDCWD, nb_plan_list_item(plan, list, NB_USERNS_LOWERS + i),
					   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (r.lowers[i] < 0 || syscall(SYS_mount_setattr, r.lowers[i], "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
			err = errno;
			goto out;
		}
	}
	err = rootfs_detached(&r, out, step);
	if (err == EINVAL && *step == 2) {
		/* the refused overlay may have marked its work dir volatile already (it checks
		 * its layers after that), and a marked work dir refuses the next mount */
		if (!*r.tmpfs && strstr(r.flags, "volatile"))
			clear_volatile_mark(r.work);
		err = rootfs_staged(&r, init, out, step);
	}
out:
	/* the overlay holds its layers now: our handles on them go */
	for (i = 0; i < r.nlow; i++)
		if (r.lowers[i] >= 0)
			close(r.lowers[i]);
	return err;
}

static int send_word(int sock, const char *word, size_t len, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec io = { .iov_base = (void *)word, .iov_len = len };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	if (fd >= 0) {
		memset(ctl, 0, sizeof(ctl));
		m.msg_control = ctl;
		m.msg_controllen = sizeof(ctl);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : (errno ? errno : EIO);
}

/*
 * The init's stdio, when it is a pipe or a socket of host root's (the CLI's, or our relay
 * of a file): given to the range's root, or the container could not reopen it through
 * /proc/self/fd/N or /dev/stdout (`echo x > /dev/stderr`), as runc's fixStdioPermissions.
 * Terminals and /dev/null are left alone.
 */
void nb_userns_stdio(long uid, long gid)
{
	struct stat st;
	int fd;

	if (uid < 0 || gid < 0)
		return;
	for (fd = 0; fd < 3; fd++) {
		if (fstat(fd, &st) < 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) || st.st_uid != 0)
			continue;
		if (fchown(fd, (uid_t)uid, (gid_t)gid) < 0) {
			/* best effort: the container still runs, only a reopen of it fails */
		}
	}
}

/* The host id of the namespace root of a plan's maps ([0] uid, [1] gid), or -1. */
long nb_userns_plan_base(const void *plan, int which)
{
	const struct nb_plan_header *h = plan;

	return map_base(nb_plan_list_item(plan, h->userns, (uint32_t)which));
}

/* The same for a running process's user namespace ("uid_map" or "gid_map"), or -1. */
long nb_userns_proc_base(pid_t pid, const char *file)
{
	char path[64], buf[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return map_base(buf);
}

int nb_userns_maps(const void *plan, pid_t init)
{
	const struct nb_plan_header *h = plan;
	int err = write_map(init, "uid_map", nb_plan_list_item(plan, h->userns, 0));

	return err ? err : write_map(init, "gid_map", nb_plan_list_item(plan, h->userns, 1));
}

/*
 * A restore (NB_PLAN_RESTORE): criu, the init, stays in the host's user namespace and makes
 * the tree's own later from its images, with the dumped maps (the same range: the lease
 * this host took for it). The rootfs is idmapped into a namespace of those maps we make
 * here: a child cloned into a new user namespace, which waits on a pipe until *hold (its
 * write end) is closed, then exits (the caller reaps it). Its pid, or -1 with errno.
 */
pid_t nb_userns_scratch(int *hold)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, NULL);
	if (pid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	*hold = p[1];
	return pid;
}

int nb_userns_serve(const void *plan, pid_t init, pid_t ns_pid, int sock, int *step)
{
	const struct nb_plan_header *h = plan;
	char ask = 0, path[64], reply[1 + sizeof(int32_t)];
	int err = 0, userns_fd, mnt = -1;
	ssize_t n;

	*step = -1;
	/* the init asks once its rootfs's directories exist ('R'); EOF: it is gone */
	do
		n = recv(sock, &ask, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n != 1 || ask != 'M')
		return 0;
	if (*nb_plan_list_item(plan, h->userns, 2)) {
		long uid = map_base(nb_plan_list_item(plan, h->userns, 0));
		long gid = map_base(nb_plan_list_item(plan, h->userns, 1));

		*step = 1;
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)ns_pid);
		userns_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (uid < 0 || gid < 0)
			err = EINVAL;
		else if (userns_fd < 0)
			err = errno;
		else
			err = make_rootfs(plan, h->userns, init, userns_fd, uid, gid, &mnt, step);
		if (userns_fd >= 0)
			close(userns_fd);
	}
	if (err) {
		int32_t e = err;

		reply[0] = 'E';
		memcpy(reply + 1, &e, sizeof(e));
		send_word(sock, reply, sizeof(reply), -1);
		return err;
	}
	*step = 4;
	err = send_word(sock, "U", 1, mnt);
	if (mnt >= 0)
		close(mnt);
	if (!err)
		*step = -1;
	return err;
}
