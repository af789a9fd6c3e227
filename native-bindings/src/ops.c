/*
 * The container init's op interpreter. Runs in the init (pid 1 of the new pid
 * namespace) after GO and before execve. TypeScript decided every op and its
 * order (src/runtime/plan/); this file only carries them out and reports the
 * first failure as (op index, errno).
 *
 * Paths of ops flagged NB_OPF_IN_ROOT are resolved with openat2(RESOLVE_IN_ROOT)
 * against the container root, so a symlink planted in an image (say /proc ->
 * /etc) can never redirect a mount or a mknod to the host (CVE-2021-30465 class).
 * Mounts then target the resolved O_PATH fd through /proc/self/fd/N.
 *
 * Every syscall here is on the start path (~3 us each on a VM), so the executor keeps
 * what it resolved for the next op instead of walking the same path again:
 * - the last parent directory it resolved (dir cache): "dev/null", "dev/zero", ... are
 *   each one mknodat(2) on the "dev" fd. A child is opened from it with
 *   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS and one plain component, so it is the same
 *   object a full RESOLVE_IN_ROOT walk would reach (anything else: the full walk);
 * - the directory a mkdir op opened, for the mount op right after it (target cache).
 * A mount hides what was below it, so a mount drops the caches, except the dir cache
 * when the mount went on a plain child of it (the child cannot be on the dir's path).
 * Paths outside the root (NB_OPF_IN_ROOT unset) come from the CLI, not the image, and
 * are used as they are.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "novabox.h"
#include "internal.h"

#ifndef SYS_pivot_root
#define SYS_pivot_root __NR_pivot_root
#endif

struct ctx {
	const void *plan;
	int root_fd;   /* NB_OP_SET_ROOT dir, O_PATH; -1 after pivot_root until an op needs "/" */
	int pivoted;   /* root_fd < 0 then means: open "/" on demand */
	int err_fd;
	int dir_fd;    /* dir cache: a directory resolved in the root, O_PATH */
	const char *dir_path;
	size_t dir_len;
	int tgt_fd;    /* target cache: what the last mkdir op opened (O_PATH | O_DIRECTORY) */
	const char *tgt_path;
	int tgt_child; /* it was opened as a plain child of the dir cache */
	mode_t umask;  /* the caller's, given back to the command before execve */
	int mask_fd;   /* the first masked directory's empty tmpfs, bound onto the others */
};

/*
 * Done with an fd of ours. op_exec's close_range(2) closes every fd left before execve,
 * so a close(2) here would only add a syscall to the start path (~30 of them per start);
 * past a bound they are closed now, so that a plan with many ops cannot run out of fds.
 */
#define NB_KEEP_FDS_BELOW 256
static void put_fd(int fd)
{
	if (fd >= NB_KEEP_FDS_BELOW)
		close(fd);
}

static void drop_fd(int *fd)
{
	if (*fd >= 0)
		put_fd(*fd);
	*fd = -1;
}

static void drop_target(struct ctx *c)
{
	drop_fd(&c->tgt_fd);
	c->tgt_path = NULL;
}

static void drop_caches(struct ctx *c)
{
	drop_target(c);
	drop_fd(&c->dir_fd);
	c->dir_path = NULL;
}

static int root_fd(struct ctx *c)
{
	if (c->root_fd < 0 && c->pivoted)
		c->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->root_fd < 0 && !c->pivoted)
		errno = EBADF;
	return c->root_fd;
}

static int resolve(struct ctx *c, const struct nb_op *op, const char *path, int oflags)
{
	struct open_how how = { .flags = (uint64_t)(oflags | O_CLOEXEC) };
	int fd;

	if (!(op->op_flags & NB_OPF_IN_ROOT))
		return open(path, oflags | O_CLOEXEC);
	if (root_fd(c) < 0)
		return -1;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	/* EAGAIN: a rename or a mount anywhere on the host during a walk through ".." (an
	 * image's ../run/hosts-real), and the kernel could not vouch the walk stayed inside:
	 * openat2(2) says retry. Busy hosts (other containers starting) hit it; bounded. */
	for (int tries = 0;; tries++) {
		fd = (int)syscall(SYS_openat2, c->root_fd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN || tries >= 256)
			return fd;
	}
}

/* name, if it is one plain component ("a", not "", ".", ".." or "a/b"). */
static int plain_name(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/');
}

/*
 * The name of path below the cached dir ("dev/null" with "dev" cached: "null"), or NULL.
 * Only for in-root paths: the cache holds in-root directories only.
 */
static const char *cached_child(struct ctx *c, const struct nb_op *op, const char *path)
{
	const char *name;

	if (!(op->op_flags & NB_OPF_IN_ROOT) || c->dir_fd < 0)
		return NULL;
	if (strncmp(path, c->dir_path, c->dir_len) || path[c->dir_len] != '/')
		return NULL;
	name = path + c->dir_len + 1;
	return plain_name(name) ? name : NULL;
}

/* A plain child of dir_fd: no symlink, no "..", never above dir_fd (openat2(2)). */
static int open_child(int dir_fd, const char *name, int oflags)
{
	struct open_how how = { .flags = (uint64_t)(oflags | O_CLOEXEC),
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };

	return (int)syscall(SYS_openat2, dir_fd, name, &how, sizeof(how));
}

/*
 * resolve(), through the dir cache when path is a plain child of it; *child says so.
 * A symlink or a mount trap there (ELOOP, EXDEV) falls back to the full in-root walk.
 */
static int resolve_cached(struct ctx *c, const struct nb_op *op, const char *path, int oflags,
			  int *child)
{
	const char *name = cached_child(c, op, path);
	int fd;

	*child = 0;
	if (name) {
		fd = open_child(c->dir_fd, name, oflags);
		if (fd >= 0) {
			*child = 1;
			return fd;
		}
		if (errno != ELOOP && errno != EXDEV)
			return -1;
	}
	return resolve(c, op, path, oflags);
}

/*
 * Split "a/b/c" into a borrowed fd of the directory "a/b" (resolved in the root) and the
 * name "c". The fd is the dir cache (or the root fd for a top-level name): never close it.
 * Out of the root (NB_OPF_IN_ROOT unset) the fd is a new one the caller closes: *owned.
 */
static int resolve_parent(struct ctx *c, const struct nb_op *op, const char *path, char *name,
			  size_t name_len, int *owned)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	int fd;

	*owned = 0;
	if (n >= sizeof(dir) || snprintf(name, name_len, "%s", slash ? slash + 1 : path) >= (int)name_len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	if (!(op->op_flags & NB_OPF_IN_ROOT)) {
		*owned = 1;
		return open(n ? dir : (slash ? "/" : "."), O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	/* "proc", "/proc": the root itself is the parent (openat2 of "." in it is the root). */
	if (n == 0 || strspn(dir, "/") == n)
		return root_fd(c);
	if (c->dir_fd >= 0 && c->dir_len == n && strncmp(c->dir_path, path, n) == 0)
		return c->dir_fd;
	fd = resolve(c, op, dir, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return -1;
	drop_fd(&c->dir_fd);
	c->dir_fd = fd;
	c->dir_path = path; /* the plan outlives the ops: its first n bytes name the dir */
	c->dir_len = n;
	return fd;
}

static void fd_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* Mount flags of an existing mount that a remount must repeat (mount(2): locked flags). */
static unsigned long kept_flags(int fd)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (fstatvfs(fd, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* mount(2) on an O_PATH fd: through /proc/self/fd/N, the mount goes where the fd is. */
static int mount_on(const char *src, int fd, const char *type, unsigned long flags, const void *data)
{
	char p[64];

	fd_path(p, sizeof(p), fd);
	return mount(src, p, type, flags, data);
}

static int bind_src_fd[NB_PLAN_MAX_OPS];
static int bind_src_opened;

static int op_mount_at(struct ctx *c, const struct nb_op *op, const char *src, const char *target, const char *type,
		       const char *data);

static int op_mount(struct ctx *c, const struct nb_op *op, uint32_t index)
{
	const char *src = nb_plan_str(c->plan, op->s[0]);
	const char *target = nb_plan_str(c->plan, op->s[1]);
	const char *type = nb_plan_str(c->plan, op->s[2]);
	const char *data = nb_plan_str(c->plan, op->s[3]);
	char src_path[64];
	int rc;

	/* a source NB_OP_USERNS opened while we could still reach it (closed once mounted) */
	if (bind_src_opened && bind_src_fd[index] >= 0) {
		fd_path(src_path, sizeof(src_path), bind_src_fd[index]);
		src = src_path;
		rc = op_mount_at(c, op, src, target, type, data);
		int e = errno;
		close(bind_src_fd[index]);
		bind_src_fd[index] = -1;
		errno = e;
		return rc;
	}
	return op_mount_at(c, op, src, target, type, data);
}

static int op_mount_at(struct ctx *c, const struct nb_op *op, const char *src, const char *target, const char *type,
		       const char *data)
{
	int fd, rc, child = 0, e;

	/* A host path the CLI chose (/, the overlay's merged dir): nothing to resolve. */
	if (!(op->op_flags & NB_OPF_IN_ROOT)) {
		drop_caches(c);
		return mount(src, target, type, (unsigned long)op->flags, data);
	}
	if (c->tgt_fd >= 0 && strcmp(c->tgt_path, target) == 0) {
		fd = c->tgt_fd; /* the mkdir op right before opened it */
		child = c->tgt_child;
		c->tgt_fd = -1;
	} else {
		fd = resolve_cached(c, op, target, O_PATH, &child);
	}
	e = errno;
	drop_target(c);
	if (!child)
		drop_fd(&c->dir_fd);
	if (fd < 0) {
		errno = e;
		return -1;
	}
	rc = mount_on(src, fd, type, (unsigned long)op->flags, data);
	put_fd(fd);
	return rc;
}

/*
 * The directory is usually there (proc, sys, dev in an image) or the parent is a fresh
 * tmpfs where it never is: open first in the first case, mkdir first in the second.
 */
static int op_mkdir(struct ctx *c, const struct nb_op *op)
{
	const char *path = nb_plan_str(c->plan, op->s[1]);
	char name[NAME_MAX + 1];
	int dfd, fd, rc, owned, child = 0;

	drop_target(c);
	if (!cached_child(c, op, path)) {
		fd = resolve(c, op, path, O_PATH | O_DIRECTORY);
		if (fd >= 0)
			goto opened;
		/* Missing, or not a directory: the mkdir below decides, with the errno it always had. */
	}
	dfd = resolve_parent(c, op, path, name, sizeof(name), &owned);
	if (dfd < 0)
		return -1;
	rc = mkdirat(dfd, name, (mode_t)op->n[0]);
	if (rc < 0 && errno != EEXIST) {
		int e = errno;
		if (owned)
			close(dfd);
		errno = e;
		return -1;
	}
	/* There now, or it was: a directory, or a symlink that leads inside the root to one
	 * (/var/run -> /run). One that would leave the root resolves to nothing there. */
	fd = -1;
	if (!owned && dfd == c->dir_fd && plain_name(name)) {
		fd = open_child(dfd, name, O_PATH | O_DIRECTORY);
		child = fd >= 0;
	}
	if (owned)
		close(dfd);
	if (fd < 0)
		fd = resolve(c, op, path, O_PATH | O_DIRECTORY);
	if (fd < 0) {
		errno = ENOTDIR;
		return -1;
	}
opened:
	if (!(op->op_flags & NB_OPF_IN_ROOT)) {
		close(fd);
		return 0;
	}
	c->tgt_fd = fd;
	c->tgt_path = path;
	c->tgt_child = child;
	return 0;
}

/* The init runs with umask 0 (nb_run_ops), so the node gets op->n[0] as it is. */
static int op_mknod(struct ctx *c, const struct nb_op *op)
{
	const char *path = nb_plan_str(c->plan, op->s[1]);
	char name[NAME_MAX + 1];
	int dfd, rc, owned, e;

	drop_target(c);
	dfd = resolve_parent(c, op, path, name, sizeof(name), &owned);
	if (dfd < 0)
		return -1;
	rc = mknodat(dfd, name, (mode_t)op->n[0], makedev(op->n[1], op->n[2]));
	e = errno;
	if (owned)
		close(dfd);
	errno = e;
	if (rc < 0 && errno == EEXIST && S_ISREG((mode_t)op->n[0])) {
		/* A mount point file that is already there (a volume onto an image's file), or a
		 * symlink to one that resolves inside the root (/etc/resolv.conf -> ../run/...):
		 * the mount op resolves the same way. */
		struct stat st;
		int fd = resolve(c, op, path, O_PATH);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			close(fd);
			return 0;
		}
		if (fd >= 0)
			close(fd);
		errno = EEXIST;
	}
	return rc;
}

static int op_symlink(struct ctx *c, const struct nb_op *op)
{
	char name[NAME_MAX + 1];
	int dfd, rc, owned, e;

	drop_target(c);
	dfd = resolve_parent(c, op, nb_plan_str(c->plan, op->s[1]), name, sizeof(name), &owned);
	if (dfd < 0)
		return -1;
	rc = symlinkat(nb_plan_str(c->plan, op->s[0]), dfd, name);
	if (rc < 0 && errno == EEXIST)
		rc = 0;
	e = errno;
	if (owned)
		close(dfd);
	errno = e;
	return rc;
}

/*
 * A masked directory gets an empty read-only tmpfs; the first one's mount is kept (mask_fd)
 * and later ones are binds of it: a bind copies the mount's flags (ro, nosuid, nodev,
 * noexec) and the superblock is read-only, so each looks the same as a tmpfs of its own,
 * but the kernel makes and tears down one superblock instead of one per directory.
 */
static int op_mask(struct ctx *c, const struct nb_op *op)
{
	const char *path = nb_plan_str(c->plan, op->s[1]);
	struct stat st;
	int fd, rc, e;

	drop_caches(c);
	fd = resolve(c, op, path, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0) {
		rc = -1;
	} else if (!S_ISDIR(st.st_mode)) {
		rc = mount_on("/dev/null", fd, NULL, MS_BIND, NULL);
	} else {
		rc = -1;
		if (c->mask_fd >= 0) {
			char src[64];
			fd_path(src, sizeof(src), c->mask_fd);
			rc = mount_on(src, fd, NULL, MS_BIND, NULL);
		}
		if (rc < 0) {
			rc = mount_on("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				      "size=0,mode=0555");
			if (rc == 0 && c->mask_fd < 0) /* the new mount on top: reopen */
				c->mask_fd = resolve(c, op, path, O_PATH | O_NOFOLLOW | O_DIRECTORY);
		}
	}
	e = errno;
	put_fd(fd);
	errno = e;
	return rc;
}

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
struct mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};
#endif

/*
 * Make the mount at fd read-only and change nothing else: mount_setattr(2) (Linux 5.12)
 * touches only the read-only bit; before it, a remount must repeat the flags the kernel
 * locked (mount(2)), read with fstatvfs.
 */
static int set_readonly(int fd)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
	char p[64];

	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	fd_path(p, sizeof(p), fd);
	return mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(fd), NULL);
}

static int op_readonly(struct ctx *c, const struct nb_op *op, int must_exist_mount)
{
	const char *path = nb_plan_str(c->plan, op->s[1]);
	int fd, rc;

	drop_caches(c);
	fd = resolve(c, op, path, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return (errno == ENOENT && !must_exist_mount) ? 0 : -1;
	if (!must_exist_mount) {
		/* Bind onto itself, then reopen: the new mount on top is the one to change. */
		char p[64];
		fd_path(p, sizeof(p), fd);
		rc = mount(p, p, NULL, MS_BIND | MS_REC, NULL);
		put_fd(fd);
		if (rc < 0)
			return -1;
		fd = resolve(c, op, path, O_PATH | O_NOFOLLOW);
		if (fd < 0)
			return -1;
	}
	rc = set_readonly(fd);
	put_fd(fd);
	return rc;
}

static int send_fd(int sock, int fd)
{
	char data[1] = { 'M' };
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			      .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	memset(ctl, 0, sizeof(ctl));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/*
 * The pty comes from the container's own devpts instance, as runc does: a slave
 * opened in the host's mount namespace could not be bound into ours (mount(2)
 * refuses a source mount of another namespace), and ttyname(3) inside would not
 * find it. TIOCGPTPEER opens the slave without a path lookup (ioctl_tty(2)).
 */
static int op_console(struct ctx *c, const struct nb_op *op)
{
	char p[64];
	int unlock = 0, master, slave, target, rc;

	master = resolve(c, op, nb_plan_str(c->plan, op->s[0]), O_RDWR | O_NOCTTY);
	if (master < 0)
		return -1;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		goto fail_master;
	if (op->n[0] && op->n[1]) {
		/* Before the command runs, so it never sees a 0x0 terminal. */
		struct winsize ws = { .ws_row = (unsigned short)op->n[0], .ws_col = (unsigned short)op->n[1] };
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			goto fail_master;
	}
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		goto fail_master;
	/* No console file (exec into a running server): the pty is only our stdio. */
	if (op->s[1]) {
		target = resolve(c, op, nb_plan_str(c->plan, op->s[1]), O_PATH | O_NOFOLLOW);
		if (target < 0)
			goto fail_slave;
		fd_path(p, sizeof(p), target);
		{
			char src[64];
			fd_path(src, sizeof(src), slave);
			rc = mount(src, p, NULL, MS_BIND, NULL);
		}
		close(target);
		if (rc < 0)
			goto fail_slave;
	}
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
		goto fail_slave;
	close(slave);
	/* setsid(2) then TIOCSCTTY: the pty becomes the init's controlling terminal. */
	if (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0)
		goto fail_master;
	if (send_fd(NB_FD_CONSOLE, master) < 0)
		goto fail_master;
	close(master);
	close(NB_FD_CONSOLE);
	return 0;

fail_slave:
	rc = errno;
	close(slave);
	close(master);
	errno = rc;
	return -1;
fail_master:
	rc = errno;
	close(master);
	errno = rc;
	return -1;
}

static int op_set_root(struct ctx *c, const struct nb_op *op)
{
	int fd = open(nb_plan_str(c->plan, op->s[1]), O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	drop_fd(&c->root_fd);
	c->root_fd = fd;
	c->pivoted = 0;
	return 0;
}

/* pivot_root(".", ".") then detach the old root: needs no put_old directory (pivot_root(2)). */
static int op_pivot_root(struct ctx *c, const struct nb_op *op)
{
	if (c->root_fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (fchdir(c->root_fd) < 0) /* an O_PATH fd will do (open(2)) */
		return -1;
	if (op->op_flags & NB_OPF_CHROOT) {
		/* no mount namespace of its own: the host's mounts are not ours to move */
		if (chroot(".") < 0 || chdir("/") < 0)
			return -1;
		drop_fd(&c->root_fd);
		c->pivoted = 1;
		return 0;
	}
	if (op->op_flags & NB_OPF_NO_PIVOT) {
		/* runc's --no-pivot: the root mount moved over /, then chroot into it; the old
		 * root's mounts stay underneath, hidden (a process with CAP_SYS_CHROOT may climb
		 * out, which is why pivot_root is the default) */
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
			return -1;
		drop_fd(&c->root_fd);
		c->pivoted = 1;
		return 0;
	}
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return -1;
	/* Keep the old root's unmount from propagating to the host. */
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return -1;
	if (umount2(".", MNT_DETACH) < 0)
		return -1;
	if (chdir("/") < 0)
		return -1;
	/* Most plans resolve nothing in the root after this: "/" is opened when one does. */
	drop_fd(&c->root_fd);
	c->pivoted = 1;
	return 0;
}

static int op_cap_bound(const struct nb_op *op)
{
	int cap;

	for (cap = 0; cap < 64; cap++) {
		if (op->n[0] & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL) /* past cap_last_cap */
				break;
			return -1;
		}
	}
	return 0;
}

static int op_capset(const struct nb_op *op)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	int cap;

	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = (uint32_t)op->n[0];
	data[1].effective = data[1].permitted = (uint32_t)(op->n[0] >> 32);
	data[0].inheritable = (uint32_t)op->n[1];
	data[1].inheritable = (uint32_t)(op->n[1] >> 32);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -1;
	/* ambient: what a process other than root keeps through its execve */
	for (cap = 0; cap < 64; cap++)
		if ((op->n[2] & (1ull << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return -1;
	return 0;
}

static int op_setuid(const struct nb_op *op)
{
	uid_t uid = (uid_t)op->n[0];
	int keep = (op->op_flags & NB_OPF_KEEP_CAPS) != 0, rc;

	if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return -1;
	rc = setresuid(uid, uid, uid);
	if (keep && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return -1;
	return rc;
}

static int op_setgroups(struct ctx *c, const struct nb_op *op)
{
	gid_t gids[256];
	uint32_t n = nb_plan_list_len(c->plan, op->list), i;

	if (n > 256) {
		errno = E2BIG;
		return -1;
	}
	for (i = 0; i < n; i++)
		gids[i] = (gid_t)strtoul(nb_plan_list_item(c->plan, op->list, i), NULL, 10);
	return setgroups(n, gids);
}

/* CVE-2024-21626: a cwd reached through a leaked host fd is not "inside" anything. */
/*
 * Join a cgroup v1 hierarchy: "0" written to its `tasks` file moves the calling thread,
 * and a thread moving itself skips the cgroup threadgroup rwsem that a pid written to
 * cgroup.procs takes for writing, after an RCU grace period (runtime/cgroups/placement.ts).
 * The init is a single thread here, so this moves the whole process.
 */
#define NB_MAX_PREOPEN 16
static struct {
	uint32_t op;
	int fd;
} preopened[NB_MAX_PREOPEN];
static int n_preopened;

void nb_preopen_cgroup_joins(const void *plan)
{
	const struct nb_plan_header *h = plan;
	const struct nb_op *ops = nb_plan_ops(plan);
	uint32_t i;

	for (i = 0; i < h->n_ops && n_preopened < NB_MAX_PREOPEN; i++) {
		int fd;

		if (ops[i].kind != NB_OP_CGROUP_JOIN)
			continue;
		fd = open(nb_plan_str(plan, ops[i].s[1]), O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* the op opens it again and reports the error */
		preopened[n_preopened].op = i;
		preopened[n_preopened].fd = fd;
		n_preopened++;
	}
}

/* The monitor's copies, once the init (which has its own) is cloned. */
void nb_close_preopened(void)
{
	for (int k = 0; k < n_preopened; k++) {
		if (preopened[k].fd >= 0)
			close(preopened[k].fd);
		preopened[k].fd = -1;
	}
}

static int op_cgroup_join(struct ctx *c, const struct nb_op *op, uint32_t index)
{
	int fd = -1, k;
	ssize_t n;

	for (k = 0; k < n_preopened; k++) {
		if (preopened[k].op == index) {
			fd = preopened[k].fd;
			preopened[k].fd = -1;
		}
	}
	if (fd < 0)
		fd = open(nb_plan_str(c->plan, op->s[1]), O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = write(fd, "0", 1);
	if (n != 1) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		errno = e;
		return -1;
	}
	/* A host fd: closed at once, not left for op_exec's sweep, so that nothing of the
	 * host is held a moment longer than needed by a process the container can see
	 * (a server exec's child is in the server's pid namespace from its birth). */
	close(fd);
	return 0;
}

static int op_chdir(struct ctx *c, const struct nb_op *op)
{
	char cwd[PATH_MAX];

	(void)c;
	if (chdir(nb_plan_str(c->plan, op->s[1])) < 0)
		return -1;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	if (cwd[0] != '/') {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

int nb_exec_copy_fd = -1;
int nb_userns_sock = -1;
static int rootfs_mount_fd = -1; /* what NB_OP_USERNS received, for NB_OP_MOUNT_FD */

/*
 * NB_OP_USERNS: ask the monitor for the rootfs ('M'); its answer says the id maps are
 * written and carries the rootfs it made, if any (SCM_RIGHTS), or 'E' and an errno. Until then we are host uid 0 without
 * a capability outside our namespace (the v1 cgroup joins before this op need just
 * that: cgroup v1 lets uid 0 move itself). Then root of the namespace: these ids are
 * the range's base on the host, so whatever the ops make from here on belongs to the
 * container, and the capabilities we have stay (the namespace's root keeps them).
 */
/*
 * The host paths later bind mounts take their source from (the /etc files in the
 * container's directory, -v volumes, the host's device nodes), opened now, while we are
 * still host uid 0: once the plan's setuid(0) makes us the namespace's root (the range's
 * base on the host) the directories on the way may not let us through. The mount then
 * goes through /proc/self/fd/N, as runc's mount sources do.
 */
static int preopen_bind_sources(struct ctx *c, uint32_t from)
{
	const struct nb_plan_header *h = c->plan;
	const struct nb_op *ops = nb_plan_ops(c->plan);
	uint32_t i;

	for (i = 0; i < h->n_ops; i++)
		bind_src_fd[i] = -1;
	bind_src_opened = 1;
	for (i = from + 1; i < h->n_ops; i++) {
		const char *src = nb_plan_str(c->plan, ops[i].s[0]);

		if (ops[i].kind != NB_OP_MOUNT || !(ops[i].flags & MS_BIND) || !src || src[0] != '/')
			continue;
		bind_src_fd[i] = open(src, O_PATH | O_CLOEXEC);
		/* out of fds (a plan of hundreds of volumes under a low limit): the rest are
		 * mounted by path; ENOENT: the mount op says so itself, with its own index */
		if (bind_src_fd[i] < 0 && (errno == EMFILE || errno == ENFILE))
			break;
		if (bind_src_fd[i] < 0 && errno != ENOENT)
			return -1;
	}
	return 0;
}

static int op_userns(struct ctx *c, uint32_t from)
{
	char word[1 + sizeof(int32_t)], ctl[CMSG_SPACE(sizeof(int))];
	struct iovec io = { .iov_base = word, .iov_len = sizeof(word) };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	ssize_t n;

	/* 'M': our directories exist ('R' came): make the rootfs */
	do
		n = send(nb_userns_sock, "M", 1, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return -1;
	do
		n = recvmsg(nb_userns_sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == (ssize_t)sizeof(word) && word[0] == 'E') {
		int32_t e;

		memcpy(&e, word + 1, sizeof(e));
		errno = e > 0 ? e : EIO; /* what the monitor could not do (it says which step) */
		return -1;
	}
	if (n != 1 || word[0] != 'U') {
		errno = EPROTO;
		return -1;
	}
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&rootfs_mount_fd, CMSG_DATA(cm), sizeof(int));
	close(nb_userns_sock);
	nb_userns_sock = -1;
	return preopen_bind_sources(c, from);
}

/* NB_OP_MOUNT_FD: the monitor's detached overlay goes on the (host) path s[1]. */
static int op_mount_fd(struct ctx *c, const struct nb_op *op)
{
	int rc;

	drop_caches(c);
	if (rootfs_mount_fd < 0) {
		errno = EBADF;
		return -1;
	}
	rc = (int)syscall(SYS_move_mount, rootfs_mount_fd, "", AT_FDCWD, nb_plan_str(c->plan, op->s[1]),
			  0x4 /* MOVE_MOUNT_F_EMPTY_PATH */);
	put_fd(rootfs_mount_fd);
	rootfs_mount_fd = -1;
	return rc;
}

/* close_range(2) of every fd from 3 up except keep1 and keep2 (each -1 or >= 3). */
static void sweep_fds(unsigned int from, int keep1, int keep2)
{
	int keep[2], i;

	if (keep2 >= 0 && (keep1 < 0 || keep2 < keep1)) {
		keep[0] = keep2;
		keep[1] = keep1;
	} else {
		keep[0] = keep1;
		keep[1] = keep2;
	}
	for (i = 0; i < 2; i++) {
		if (keep[i] < 3 || (unsigned int)keep[i] < from)
			continue;
		if ((unsigned int)keep[i] > from)
			syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0);
		from = (unsigned int)keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0U, 0);
}

static int op_exec(struct ctx *c, const struct nb_op *op)
{
	const char *file = nb_plan_str(c->plan, op->s[0]);
	const char *path = nb_plan_str(c->plan, op->s[1]);
	uint32_t argc = nb_plan_list_len(c->plan, op->list);
	uint32_t envc = op->list2 ? nb_plan_list_len(c->plan, op->list2) : 0;
	char **argv, **envp, buf[PATH_MAX];
	int saved = ENOENT;
	uint32_t i;

	argv = calloc(argc + 1, sizeof(char *));
	envp = calloc(envc + 1, sizeof(char *));
	if (!argv || !envp)
		return -1;
	for (i = 0; i < argc; i++)
		argv[i] = (char *)nb_plan_list_item(c->plan, op->list, i);
	for (i = 0; i < envc; i++)
		envp[i] = (char *)nb_plan_list_item(c->plan, op->list2, i);

	/* --preserve-fds: the engine's fds (NB_FD_PRESERVE..) become 3.. in ascending order (a
	 * target 3+i is never a source still to move: sources are 5 above their targets); the
	 * error pipe and the sealed binary move above them first */
	unsigned int keep = (unsigned int)op->n[0];
	if (keep) {
		int *mv[2] = { &c->err_fd, &nb_exec_copy_fd };
		for (i = 0; i < 2; i++) {
			if (*mv[i] >= 0 && (unsigned int)*mv[i] < NB_FD_PRESERVE + keep) {
				int to = fcntl(*mv[i], F_DUPFD_CLOEXEC, (int)(NB_FD_PRESERVE + keep));
				if (to < 0)
					return -1;
				*mv[i] = to;
			}
		}
		for (i = 0; i < keep; i++) {
			if (dup2((int)(NB_FD_PRESERVE + i), (int)(3 + i)) < 0)
				return -1;
		}
	}
	/* Nothing of ours may reach the container: every fd but stdio (and the preserved ones),
	 * the close-on-exec error pipe and the sealed binary (close-on-exec too) goes now
	 * (close_range(2)). */
	c->root_fd = c->dir_fd = c->tgt_fd = c->mask_fd = -1; /* all swept below */
	umask(c->umask);
	sweep_fds(3 + keep, c->err_fd, (op->op_flags & NB_OPF_SEALED) ? nb_exec_copy_fd : -1);
	/* a session of its own (a console's op made one already: EPERM, harmless): else its
	 * session leader is the monitor, outside the container's pid namespace, and CRIU
	 * refuses to dump a server with it in ("a session leader ... is outside of its pid
	 * namespace"), a process `server exec` left running included */
	(void)setsid();

	if (op->op_flags & NB_OPF_SEALED) {
		/* the sealed copy (monitor.c): /proc/1/exe inside is a memfd that cannot be
		 * written, never a file of the host (CVE-2019-5736) */
		if (nb_exec_copy_fd < 0) {
			errno = EBADF;
			return -1;
		}
		syscall(SYS_execveat, nb_exec_copy_fd, "", argv, envp, AT_EMPTY_PATH);
		return -1;
	}
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		return -1;
	}
	/* execvpe(3) semantics with the container's PATH, not ours. */
	while (path) {
		const char *end = strchrnul(path, ':');
		int n = (int)(end - path);
		const char *dir = n ? path : "."; /* an empty PATH element means "." */

		if (snprintf(buf, sizeof(buf), "%.*s/%s", n ? n : 1, dir, file) < (int)sizeof(buf)) {
			execve(buf, argv, envp);
			if (errno == EACCES || errno == ENOEXEC)
				saved = errno;
			else if (errno != ENOENT && errno != ENOTDIR)
				return -1;
		}
		path = *end ? end + 1 : NULL;
	}
	errno = saved;
	return -1;
}

#ifdef NB_OP_TIMING
/* Debug builds only (make -C native-bindings -B CFLAGS="-O2 -DNB_OP_TIMING"): per-op
 * wall time on stderr just before execve, to see where the init spends its time. */
#include <time.h>
static uint64_t nb_t[NB_PLAN_MAX_OPS + 1];
static uint64_t nb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static void nb_dump_times(const void *plan, uint32_t upto)
{
	const struct nb_op *ops = nb_plan_ops(plan);
	uint32_t i;
	for (i = 0; i < upto; i++)
		dprintf(2, "optime %3u kind %2u %8.1f us %s\n", i, ops[i].kind, (nb_t[i + 1] - nb_t[i]) / 1000.0,
			ops[i].s[1] ? nb_plan_str(plan, ops[i].s[1]) : "");
	dprintf(2, "optime total %8.1f us\n", (nb_t[upto] - nb_t[0]) / 1000.0);
	for (i = 0; i < upto && ops[i].kind == NB_OP_CGROUP_JOIN; i++)
		;
	dprintf(2, "optime nojoin %8.1f us\n", (nb_t[upto] - nb_t[i]) / 1000.0);
}
#define NB_STAMP(i) (nb_t[(i)] = nb_now())
#define NB_DUMP(plan, i) nb_dump_times((plan), (i))
#else
#define NB_STAMP(i) ((void)0)
#define NB_DUMP(plan, i) ((void)0)
#endif

/* The second gate: the CLI's 'G' once it has done what the command needs (its record,
 * the veth, signal forwarding). Anything else (EOF) means the CLI gave up. */
static void await_go(int fd)
{
	char go = 0;
	ssize_t n;

	do
		n = read(fd, &go, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || go != 'G')
		_exit(125);
}

/* NB_PLAN_DETACH: tell the monitor the ops are done (it then exits; `start` sends 'G'). */
static void announce_gate(int err_fd)
{
	int32_t msg[2] = { NB_OPFAIL_GATE, 0 };

	if (write(err_fd, msg, sizeof(msg)) != sizeof(msg))
		_exit(125);
}

static int op_write(struct ctx *c, const struct nb_op *op)
{
	const char *data = nb_plan_str(c->plan, op->s[0]);
	size_t len = strlen(data);
	ssize_t n;
	int fd, e;

	drop_caches(c);
	fd = resolve(c, op, nb_plan_str(c->plan, op->s[1]), O_WRONLY | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	do
		n = write(fd, data, len);
	while (n < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (n >= 0 && (size_t)n != len)
		e = EIO;
	errno = e;
	return n >= 0 && (size_t)n == len ? 0 : -1;
}

static int op_setns(struct ctx *c, const struct nb_op *op)
{
	int fd, rc, e;

	drop_caches(c);
	fd = open(nb_plan_str(c->plan, op->s[1]), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = setns(fd, (int)op->flags);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

/*
 * NB_OP_HOOK: the program forked and executed with its argv and envp (no other variable),
 * the state JSON on its stdin through a pipe, the init's stdout and stderr, no other fd of
 * ours, default signal handling and mask; waited for, within its timeout (a pidfd polled;
 * then killed). Its exit status 0 is success.
 */
static int op_hook(struct ctx *c, const struct nb_op *op)
{
	const char *file = nb_plan_str(c->plan, op->s[0]);
	const char *state = nb_plan_str(c->plan, op->s[1]);
	uint32_t argc = nb_plan_list_len(c->plan, op->list);
	uint32_t envc = op->list2 ? nb_plan_list_len(c->plan, op->list2) : 0;
	char **argv = calloc(argc + 1, sizeof(char *)), **envp = calloc(envc + 1, sizeof(char *));
	int in[2], status = 0, e;
	size_t len = state ? strlen(state) : 0, at = 0;
	pid_t pid;
	uint32_t i;

	if (!argv || !envp)
		goto nomem;
	for (i = 0; i < argc; i++)
		argv[i] = (char *)nb_plan_list_item(c->plan, op->list, i);
	for (i = 0; i < envc; i++)
		envp[i] = (char *)nb_plan_list_item(c->plan, op->list2, i);
	/* a missing or unexecutable program is said as such, not as its child's status 127 */
	if (access(file, X_OK) < 0 || pipe2(in, O_CLOEXEC) < 0)
		goto fail;
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(in[0]);
		close(in[1]);
		errno = e;
		goto fail;
	}
	if (pid == 0) {
		sigset_t none;
		int sig;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		if (dup2(in[0], 0) < 0)
			_exit(126);
		syscall(SYS_close_range, 3, ~0U, 0);
		execve(file, argv, envp);
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(in[0]);
	while (at < len) {
		ssize_t n = write(in[1], state + at, len - at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the hook did not read its state (EPIPE): its exit status says the rest */
		at += (size_t)n;
	}
	close(in[1]);
	if (op->n[0]) {
		int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };
			int r;
			long long ms = (long long)op->n[0] * 1000;

			do
				r = poll(&p, 1, ms > INT_MAX ? INT_MAX : (int)ms);
			while (r < 0 && errno == EINTR);
			close(pfd);
			if (r == 0) {
				kill(pid, SIGKILL);
				while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
					;
				free(argv);
				free(envp);
				errno = ETIMEDOUT;
				return -1;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			goto fail;
	}
	free(argv);
	free(envp);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	errno = WIFEXITED(status) ? NB_HOOK_EXITED | WEXITSTATUS(status) : NB_HOOK_KILLED | WTERMSIG(status);
	return -1;
nomem:
	errno = ENOMEM;
fail:
	e = errno;
	free(argv);
	free(envp);
	errno = e;
	return -1;
}

/*
 * A startContainer hook failed: `start` has returned and the monitor of a detached init is
 * gone, so no one reads the error pipe. Said on the init's stderr (the container's, which
 * the engine logs), worded as the CLI words the createContainer hooks' failures
 * (src/runtime/container.ts opFailure); the container ends with status 125.
 */
__attribute__((noreturn)) static void hook_failed_after_start(const void *plan, const struct nb_op *op)
{
	int e = errno;
	const char *file = nb_plan_str(plan, op->s[0]);

	if (e & NB_HOOK_KILLED)
		dprintf(2, "novabox-oci: the startContainer hook %s failed: killed by signal %d\n", file, e & 0xffff);
	else if (e & NB_HOOK_EXITED)
		dprintf(2, "novabox-oci: the startContainer hook %s failed: exit status %d\n", file, e & 0xffff);
	else if (e == ETIMEDOUT)
		dprintf(2, "novabox-oci: the startContainer hook %s failed: it did not end within its timeout of %llu s, and was killed\n",
			file, (unsigned long long)op->n[0]);
	else {
		char why[128];

		snprintf(why, sizeof why, "%s", strerror(e));
		why[0] = (char)tolower((unsigned char)why[0]); /* "no such file or directory", as the CLI says it */
		dprintf(2, "novabox-oci: the startContainer hook %s failed: %s\n", file, why);
	}
	_exit(125);
}

int nb_run_ops(const void *plan, int err_fd, int gate_fd, int32_t *failed_op)
{
	const struct nb_plan_header *h = plan;
	const struct nb_op *ops = nb_plan_ops(plan);
	struct ctx c = { .plan = plan, .root_fd = -1, .err_fd = err_fd, .dir_fd = -1, .tgt_fd = -1,
			 .mask_fd = -1 };
	uint32_t i;
	int rc = 0, gated = 0;

	/* Modes in the plan are the modes made (no fchmodat after each mknod); the command
	 * gets the caller's umask back in op_exec. */
	c.umask = umask(0);

	for (i = 0; i < h->n_ops; i++) {
		const struct nb_op *op = &ops[i];
		struct rlimit rl;

		NB_STAMP(i);
		if (op->kind == NB_OP_EXEC)
			NB_DUMP(plan, i);
		/* the gate: before the exec, or before the first hook that runs after `start` */
		if (!gated && (op->kind == NB_OP_EXEC || (op->kind == NB_OP_HOOK && (op->op_flags & NB_OPF_AFTER_START)))) {
			gated = 1;
			if (gate_fd >= 0) {
				if (h->flags & NB_PLAN_DETACH)
					announce_gate(err_fd);
				await_go(gate_fd);
			}
		}
		errno = 0;
		switch (op->kind) {
		case NB_OP_MOUNT: rc = op_mount(&c, op, i); break;
		case NB_OP_MKDIR: rc = op_mkdir(&c, op); break;
		case NB_OP_MKNOD: rc = op_mknod(&c, op); break;
		case NB_OP_SYMLINK: rc = op_symlink(&c, op); break;
		case NB_OP_MASK: rc = op_mask(&c, op); break;
		case NB_OP_READONLY: rc = op_readonly(&c, op, 0); break;
		case NB_OP_REMOUNT_RO: rc = op_readonly(&c, op, 1); break;
		case NB_OP_SET_ROOT: drop_caches(&c); rc = op_set_root(&c, op); break;
		case NB_OP_PIVOT_ROOT: drop_caches(&c); rc = op_pivot_root(&c, op); break;
		case NB_OP_SETHOSTNAME: {
			const char *name = nb_plan_str(plan, op->s[0]);
			rc = sethostname(name, strlen(name));
			break;
		}
		case NB_OP_SETRLIMIT:
			rl.rlim_cur = (rlim_t)op->n[1];
			rl.rlim_max = (rlim_t)op->n[2];
			rc = setrlimit((int)op->n[0], &rl);
			break;
		case NB_OP_UNSHARE: drop_caches(&c); rc = unshare((int)op->flags); break;
		case NB_OP_CAP_BOUND: rc = op_cap_bound(op); break;
		case NB_OP_SETGROUPS: rc = op_setgroups(&c, op); break;
		case NB_OP_SETGID: rc = setresgid((gid_t)op->n[0], (gid_t)op->n[0], (gid_t)op->n[0]); break;
		case NB_OP_SETUID: rc = op_setuid(op); break;
		case NB_OP_CAPSET: rc = op_capset(op); break;
		case NB_OP_NO_NEW_PRIVS: rc = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); break;
		case NB_OP_CHDIR: rc = op_chdir(&c, op); break;
		case NB_OP_EXEC: rc = op_exec(&c, op); break;
		case NB_OP_CONSOLE: drop_caches(&c); rc = op_console(&c, op); break;
		case NB_OP_SECCOMP: rc = nb_load_seccomp(op->n[0] != 0); break;
		case NB_OP_SECCOMP_PROGRAM:
			rc = nb_load_seccomp_program(nb_plan_str(plan, op->s[0]), (unsigned int)op->n[1]);
			break;
		case NB_OP_CGROUP_JOIN: rc = op_cgroup_join(&c, op, i); break;
		case NB_OP_USERNS: rc = op_userns(&c, i); break;
		case NB_OP_MOUNT_FD: rc = op_mount_fd(&c, op); break;
		case NB_OP_WRITE: rc = op_write(&c, op); break;
		case NB_OP_SETNS: rc = op_setns(&c, op); break;
		case NB_OP_HOOK:
			rc = op_hook(&c, op);
			if (rc < 0 && (op->op_flags & NB_OPF_AFTER_START))
				hook_failed_after_start(plan, op); /* does not return */
			break;
		default: errno = EINVAL; rc = -1; break;
		}
		if (rc < 0) {
			*failed_op = (int32_t)i;
			return errno ? errno : EIO;
		}
	}
	*failed_op = (int32_t)(h->n_ops - 1);
	return EIO;
}
