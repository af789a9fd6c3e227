/*
 * nb_spawn: called from Node through build/novabox.node (napi.c), or through koffi.
 * Starts a per-container monitor and returns at once; the caller reads NB_EV_PID from
 * the events fd once it has done the work that does not need the pid, so that work
 * overlaps the monitor's start.
 *
 *  novabox (TypeScript, Node)        monitor (C, novabox-monitor)      init (C, new namespaces)
 *  nb_spawn(plan)
 *    memfd <- plan bytes (with NB_PLAN_LATE_OPS: no ops; an empty second memfd, fd 7)
 *    posix_spawn(setsid) ──────────▶ PR_SET_DUMPABLE 0 (the init, a copy,
 *  (returns: events fd, go fd,        stays so until its execve); validate plan
 *   ops fd)                           exec_copy: novabox-init -> sealed memfd
 *                                     stdio that is a regular file -> a pipe
 *                                      (the monitor relays it to the file)
 *  late ops: the whole plan into the  cgroup steps: mkdir, limits,
 *  ops memfd; reserve the name, make   device filter (cgroup.c)
 *  the container directory            exec: open the cgroup dirs, then setns
 *  (meanwhile)                         into the server (pidfd)
 *                                     clone3(CLONE_NEW* | CLONE_INTO_CGROUP) ─▶ closes the monitor's host fds
 *                                      (no clone3: clone, then cgroup.procs <-   (events, cgroup dir, log, relay
 *                                       init pid, then a byte on a hold pipe      ends) before anything else;
 *                                       the init reads before 'R')               waits for 'R' on the GO pipe
 *                                     userns: /proc/<init>/uid_map, gid_map      (EOF: exit 125)
 *                                      "0 <base> 65536" (host root writes them:
 *                                      setgroups stays allowed inside)
 *  write 'R' on the GO pipe ────────────────────────────────────────────▶ late ops: map + validate the
 *                                                                       whole plan from fd 7 (refused:
 *                                                                       {-2, EINVAL} on the error pipe)
 *    ◀── NB_EV_PID {init pid} ──────   (or NB_EV_ERROR {stage, errno, cgroup step}:
 *                                      what it made is removed first)
 *  pidfd, veth into the netns,                                      ops[0..n-2] meanwhile: joins of
 *  state.json, signal forwarding                                    the v1 cgroups ("0" > tasks, each
 *                                                                   fd closed at once, as host uid 0),
 *                                     userns (userns.c): waits ◀─── NB_OP_USERNS: 'M' on the userns
 *                                      for 'M'; each image layer    socket (the container dir exists)
 *                                      open_tree(CLONE) +
 *                                      mount_setattr(IDMAP, the
 *                                      init's userns); the overlay
 *                                      over them with host creds
 *                                      (fsopen/fsmount) ───────────▶ 'U' + the overlay's fd (SCM_RIGHTS),
 *                                      (or 'E' + errno: the op      or 'E': the op fails); opens the
 *                                      fails, OPFAIL's c = step+1)  host sources of later binds
 *                                                                   NB_OP_MOUNT_FD: move_mount onto the
 *                                                                   rootfs dir; set-root; setuid(0) =
 *                                                                   the range's base on the host; then
 *                                                                   mounts, pivot_root, caps ...
 *  write 'G' on the GO pipe ─────────────────────────────────────────▶ reads 'G' (EOF: exit 125), closes
 *                                                                   every fd but stdio (close_range),
 *                                                                   execve (sealed: execveat of the memfd)
 *                                     error pipe: EOF on execve,  ◀─── {op index, errno} on failure
 *    ◀── NB_EV_EXEC or NB_EV_OPFAIL ─
 *                                     (NB_PLAN_CONSOLE_LOG, systemd as pid 1: the
 *                                      console socket is the monitor's own; it keeps
 *                                      the pty master NB_OP_CONSOLE sends and copies
 *                                      /dev/console into the log until the init exits)
 *                                     waitpid(init); status file; console log;
 *                                     OOM kills read from the cgroup
 *    ◀── NB_EV_EXIT {status, oom} ───
 *  remove the container directory     rmdir the cgroup (kill leftovers, EBUSY
 *                                      retried for 2 s; the parent stays)
 *    ◀── NB_EV_CGROUP {errno, step} ─  exit
 *  reap; no NB_EV_CGROUP {0}: the driver's remove() instead
 *  (a server's monitor gets no removal steps: stopping the server removes its cgroup)
 *
 * What a process inside can reach of all this (the escape class of CVE-2016-9962,
 * CVE-2019-5736, CVE-2024-21626): a server exec's child is in the server's pid namespace
 * from its birth, so (1) it is non-dumpable until execve, and nothing without
 * CAP_SYS_PTRACE may open its /proc/<pid>/fd, cwd, root, exe or ptrace it; (2) its first
 * act closes every host fd of the monitor it has no use for, the v1 cgroup fds go as
 * each is joined, and close_range takes the rest before execve; (3) a server's pid 1 is
 * a sealed memfd copy of novabox-init, so /proc/1/exe is never a host file; (4) a regular
 * file as stdio is relayed through a pipe, never handed in (/proc/self/fd/N would reopen
 * it). test/integration/security-*.test.ts attacks each of these from inside.
 *
 * Closing the GO pipe without writing aborts the init before its first op ('R' unsent)
 * or at its execve ('G' unsent), so a CLI that dies mid-setup never leaves a command
 * running; the monitor then still removes the cgroup it made. `server start` writes 'R'
 * and 'G' as `run` does; `server exec` writes "RG" at once.
 *
 * Why a separate executable instead of fork(): Node is multi-threaded, and a
 * forked copy of it may only make async-signal-safe calls until execve
 * (fork(2), signal-safety(7)); it would also keep Node's ~40 MB resident. The
 * monitor is a small static binary started with posix_spawn (vfork semantics,
 * safe from a threaded process), so it is single-threaded and costs well under
 * a megabyte per container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "novabox.h"
#include "internal.h"

extern char **environ;

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A copy of fd at >= 64, close-on-exec, so dup2 into 0..5 can never clobber a source. */
static int high_dup(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 64);
}

static void close_if(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int nb_recv_fd(int32_t sock)
{
	char data[1];
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			      .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	ssize_t n;
	int fd;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

int nb_send_fd(const char *sock_path, int32_t fd, const char *name)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			      .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	ssize_t n;
	int sock, e;

	if (strlen(sock_path) >= sizeof(addr.sun_path) || iov.iov_len == 0)
		return -EINVAL;
	strcpy(addr.sun_path, sock_path);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		e = errno;
		close(sock);
		return -e;
	}
	memset(ctl, 0, sizeof(ctl));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	e = n < 0 ? errno : 0;
	close(sock);
	return -e;
}

int nb_pty_resize(int32_t master_fd, uint16_t rows, uint16_t cols)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };

	return ioctl(master_fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

int nb_spawn(const void *plan, uint32_t plan_len, const struct nb_spawn_args *args,
	     struct nb_spawn_result *out)
{
	int memfd = -1, opsfd = -1, ev[2] = { -1, -1 }, go[2] = { -1, -1 }, con[2] = { -1, -1 };
	int src[8] = { -1, -1, -1, -1, -1, -1, -1, -1 }, *keep = NULL, n_keep = args->preserve_fds;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char *argv[] = { "novabox-monitor", (char *)args->monitor_tag, NULL };
	char *envp[] = { NULL };
	pid_t pid;
	int32_t bad_op;
	int rc, i, fa_ok = 0, attr_ok = 0;

	memset(out, 0, sizeof(*out));
	out->monitor_pid = out->init_pid = -1;
	out->events_fd = out->go_fd = out->console_fd = out->ops_fd = -1;

	out->stage = NB_STAGE_PLAN;
	rc = nb_plan_validate(plan, plan_len, &bad_op);
	if (rc < 0)
		return rc;

	out->stage = NB_STAGE_CLONE;
	memfd = memfd_create("novabox-plan", MFD_CLOEXEC);
	if (memfd < 0 || (rc = write_all(memfd, plan, plan_len)) < 0) {
		rc = memfd < 0 ? -errno : rc;
		goto fail;
	}
	if (pipe2(ev, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail;
	}
	for (i = 0; i < 3; i++)
		src[i] = high_dup(args->stdio[i]);
	src[NB_FD_PLAN] = high_dup(memfd);
	src[NB_FD_EVENTS] = high_dup(ev[1]);
	src[NB_FD_GO] = high_dup(go[0]);
	for (i = 0; i <= NB_FD_GO; i++) {
		if (src[i] < 0) {
			rc = -errno;
			goto fail;
		}
	}
	if (args->tty) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) < 0 ||
		    (src[NB_FD_CONSOLE] = high_dup(con[1])) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	/* late ops: an empty memfd the caller fills with the whole plan while the monitor
	 * makes the cgroup and clones; the init reads it after 'R' */
	if (((const struct nb_plan_header *)plan)->flags & NB_PLAN_LATE_OPS) {
		opsfd = memfd_create("novabox-ops", MFD_CLOEXEC);
		if (opsfd < 0 || (src[NB_FD_OPS] = high_dup(opsfd)) < 0) {
			rc = -errno;
			goto fail;
		}
	}

	/* --preserve-fds: our 3.. (the engine's, inherited) as the monitor's NB_FD_PRESERVE.. */
	if (n_keep < 0 || n_keep > NB_MAX_PRESERVE) {
		rc = -EINVAL;
		goto fail;
	}
	if (n_keep > 0) {
		keep = calloc((size_t)n_keep, sizeof(int));
		if (!keep) {
			rc = -ENOMEM;
			goto fail;
		}
		for (i = 0; i < n_keep; i++)
			keep[i] = -1;
		for (i = 0; i < n_keep; i++) {
			/* above every target NB_FD_PRESERVE + i, so no dup2 below overwrites a source */
			if ((keep[i] = fcntl(3 + i, F_DUPFD_CLOEXEC, NB_FD_PRESERVE + n_keep + 64)) < 0) {
				rc = -errno;
				goto fail;
			}
		}
	}

	if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
		rc = -rc;
		goto fail;
	}
	fa_ok = 1;
	for (i = 0; i < 8; i++) {
		if (src[i] >= 0 && (rc = posix_spawn_file_actions_adddup2(&fa, src[i], i)) != 0) {
			rc = -rc;
			goto fail;
		}
	}
	for (i = 0; i < n_keep; i++) {
		if ((rc = posix_spawn_file_actions_adddup2(&fa, keep[i], NB_FD_PRESERVE + i)) != 0) {
			rc = -rc;
			goto fail;
		}
	}
	if ((rc = posix_spawnattr_init(&attr)) != 0) {
		rc = -rc;
		goto fail;
	}
	attr_ok = 1;
	/* Node blocks some signals and ignores SIGPIPE; the monitor starts clean. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&pid, args->monitor_path, &fa, &attr, argv, envp);
	if (rc != 0) {
		rc = -rc;
		goto fail;
	}
	out->monitor_pid = pid;

	/* Our copies of the child's ends must go, or EOF never arrives. */
	close_if(&ev[1]);
	close_if(&go[0]);
	close_if(&memfd);
	close_if(&con[1]);
	for (i = 0; i < 8; i++)
		close_if(&src[i]);
	for (i = 0; i < n_keep; i++)
		close_if(&keep[i]);
	free(keep);

	out->stage = 0;
	out->ops_fd = opsfd;
	out->events_fd = ev[0];
	out->go_fd = go[1];
	out->console_fd = con[0];
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return 0;

fail:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	close_if(&memfd);
	close_if(&ev[0]);
	close_if(&ev[1]);
	close_if(&go[0]);
	close_if(&go[1]);
	close_if(&con[0]);
	close_if(&con[1]);
	close_if(&opsfd);
	for (i = 0; i < 8; i++)
		close_if(&src[i]);
	for (i = 0; keep && i < n_keep; i++)
		close_if(&keep[i]);
	free(keep);
	return rc;
}
