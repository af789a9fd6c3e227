/*
 * novabox-monitor: one per container, started by nb_spawn (see spawn.c for the
 * whole handshake). It is the init's parent for the container's whole life:
 *
 *   fd 0..2  the init's stdio (with NB_PLAN_LOG: replaced by a pipe we drain)
 *   fd 3     memfd holding the plan          fd 4  events pipe to the CLI
 *   fd 5     GO pipe, read end (handed to the init: 'R' before its ops, 'G' before execve)
 *   fd 6     console socket, with NB_PLAN_TTY (handed to the init); with NB_PLAN_CONSOLE_LOG
 *            the monitor makes it itself and keeps the pty master for the console log
 *   fd 7     memfd of the ops plan, with NB_PLAN_LATE_OPS (handed to the init)
 *   fd 8..   the caller's fds 3.. with nb_spawn_args.preserve_fds (OCI --preserve-fds), handed
 *            to the init, whose exec moves them to 3..; our error pipe sits at NB_FD_HIGH
 *            or above, out of their way
 *
 * It makes the container's cgroup from the plan's steps (cgroup.c), clones the init
 * into it (or clones and places it, without clone3), reports its pid, relays "exec ok" or {op, errno} from the init's error
 * pipe, reaps it, writes the exit status file, appends the console output to a
 * size-bounded log (log -> log.1 rotation), and removes the cgroup when the plan has
 * removal steps (`run`; NB_EV_CGROUP says how it went), and last starts the plan's on_exit
 * program if it has one (a server's restart policy). With NB_PLAN_RESTORE the init execs
 * `criu restore -d`: once criu exited, the restored root (reparented to us, a subreaper) is
 * the init from then on (NB_EV_RESTORED). The CLI
 * may be gone at any point: writes to the events pipe then fail with EPIPE,
 * which is ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <time.h>
#include <unistd.h>

#include "novabox.h"
#include "internal.h"

static int events_fd = NB_FD_EVENTS;

static void send_event3(int type, int a, int b, int c)
{
	struct nb_event e = { .type = type, .a = a, .b = b, .c = c };

	if (events_fd < 0)
		return;
	if (write(events_fd, &e, sizeof(e)) != (ssize_t)sizeof(e)) {
		/* The CLI went away; keep supervising without it. */
		close(events_fd);
		events_fd = -1;
	}
}

static void send_event(int type, int a, int b)
{
	send_event3(type, a, b, 0);
}

static const void *cg_plan; /* set once the monitor made the container's cgroup */

/* Remove the cgroup the monitor made (if it did) and say how that went. */
static void remove_cgroup(void)
{
	int32_t failed;
	int err;

	if (!cg_plan)
		return;
	err = nb_cg_remove(cg_plan, &failed);
	send_event(NB_EV_CGROUP, err, failed);
	cg_plan = NULL;
}

/* A failure of the monitor itself: report it, then undo the cgroup. Exit status 1. */
static int fail(int stage, int err)
{
	send_event(NB_EV_ERROR, stage, err);
	remove_cgroup();
	return 1;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)got;
		got += (size_t)n;
	}
	return (int)got;
}

struct init_args {
	const void *plan;
	int err_w;
	int go_r;
	int hold_r; /* plain clone into a cgroup2 plan: the monitor's byte once it placed us */
	int hold_w; /* its write end, which the init closes (or EOF would never come) */
	int tty;
	int late_ops; /* NB_PLAN_LATE_OPS: the ops are in the plan on NB_FD_OPS, written by 'R' */
	int drop[16]; /* the monitor's own fds the init must not hold: closed first thing */
	int n_drop;
};

/* One byte from fd, which must be `want`; else (EOF: the sender gave up) exit 125. */
static void await_byte(int fd, char want)
{
	char c = 0;

	if (read_full(fd, &c, 1) != 1 || c != want)
		_exit(125);
}

/*
 * NB_PLAN_LATE_OPS: the whole plan the CLI wrote into NB_FD_OPS while we made the cgroup
 * and cloned (it is complete once 'R' arrives), mapped and validated; NULL if refused.
 */
static const void *map_ops_plan(void)
{
	struct stat st;
	int32_t bad_op;
	void *p;

	if (fstat(NB_FD_OPS, &st) < 0 || st.st_size <= 0 || st.st_size > NB_PLAN_MAX_BYTES)
		return NULL;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, NB_FD_OPS, 0);
	close(NB_FD_OPS);
	if (p == MAP_FAILED)
		return NULL;
	if (nb_plan_validate(p, (uint32_t)st.st_size, &bad_op) < 0 ||
	    (((const struct nb_plan_header *)p)->flags & NB_PLAN_LATE_OPS))
		return NULL;
	return p;
}

/* The container's pid 1, before execve. */
static int init_main(void *p)
{
	struct init_args *a = p;
	int32_t failed_op = -1;
	int32_t msg[2];
	int err;

	/* First of all: the monitor's fds of the host that the init has no use for (the events
	 * pipe, the cgroup2 directory it was cloned into, the console log, the relays' other
	 * ends). A server exec's child is in the server's pid namespace from its birth, so
	 * until these are closed only its non-dumpable state keeps /proc/<pid>/fd shut. */
	for (int i = 0; i < a->n_drop; i++)
		close(a->drop[i]);
	if (a->hold_r >= 0) {
		close(a->hold_w);
		await_byte(a->hold_r, 'P');
		close(a->hold_r);
	}
	/* 'R': the container directory exists (the CLI makes it while the monitor makes the
	 * cgroup), so the ops run while the CLI finishes its side; 'G', read by nb_run_ops
	 * just before execve, says the CLI is done. EOF at either gate = abort. */
	await_byte(a->go_r, 'R');
	/* NB_PLAN_DETACH: a writer of our own GO pipe, so that the CLI that created us may exit
	 * without EOF aborting us; `start` writes 'G' through /proc/<pid>/fd/5 (host root only:
	 * we are non-dumpable). Opened through the host's /proc while it is still ours to see. */
	if ((((const struct nb_plan_header *)a->plan)->flags & NB_PLAN_DETACH) &&
	    !((const struct nb_plan_header *)a->plan)->join_pid) {
		char self[32];

		snprintf(self, sizeof(self), "/proc/self/fd/%d", a->go_r);
		if (open(self, O_WRONLY | O_CLOEXEC) < 0)
			_exit(125);
	}
	if (a->late_ops) {
		a->plan = map_ops_plan();
		if (!a->plan) {
			ssize_t w;

			msg[0] = NB_OPFAIL_PLAN;
			msg[1] = EINVAL;
			w = write(a->err_w, msg, sizeof(msg));
			(void)w;
			_exit(125);
		}
	}
	err = nb_run_ops(a->plan, a->err_w, a->go_r, &failed_op);
	msg[0] = failed_op;
	msg[1] = err;
	if (write(a->err_w, msg, sizeof(msg)) < 0)
		_exit(125);
	_exit(err == ENOENT ? 127 : (err == EACCES || err == ENOEXEC) ? 126 : 125);
}

/*
 * Without clone3 (Linux < 5.7, or NB_PLAN_PLAIN_CLONE): write the init's pid to the
 * cgroup2 directory's cgroup.procs ourselves, before the init may run any op (it waits
 * for our byte on the hold pipe), so the CLI never has to and may release it early.
 */
static int place_init(int cg_fd, pid_t init)
{
	char buf[16];
	int fd, n, err = 0;

	fd = openat(cg_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = snprintf(buf, sizeof(buf), "%d", (int)init);
	if (write(fd, buf, (size_t)n) != n)
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

/*
 * clone3(2) with CLONE_INTO_CGROUP starts the init inside its cgroup v2 directory: no
 * later write to cgroup.procs, which would take the cgroup threadgroup rwsem for
 * writing and wait out an RCU grace period (milliseconds, on the start path).
 * Returns the pid, 0 in the child, or -1 with errno (ENOSYS/E2BIG/EINVAL: use clone).
 */
static pid_t clone_into(uint64_t flags, int cgroup_fd)
{
	struct clone_args args;

	memset(&args, 0, sizeof(args));
	args.flags = flags | CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)cgroup_fd;
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

/*
 * The header's user_ns (a user namespace joined by path): a short-lived child enters it,
 * then the header's pid_ns if any (owned by that namespace), and clones the init as our
 * child (CLONE_PARENT), so that the namespaces the init makes are the joined one's while
 * we stay host root. Returns the init's pid (in our pid namespace: the child's own, until
 * it enters pid_ns, which changes only its children's), or -1 with errno.
 */
static pid_t clone_in_userns(const void *plan, struct init_args *ia, char *stack_top)
{
	const struct nb_plan_header *h = plan;
	int report[2], user_fd, pid_fd = -1, err = 0;
	int32_t msg[2] = { 0, -1 };
	pid_t helper;

	user_fd = open(nb_plan_list_item(plan, h->user_ns, 0), O_RDONLY | O_CLOEXEC);
	if (user_fd < 0)
		return -1;
	if (h->pid_ns && (pid_fd = open(nb_plan_str(plan, h->pid_ns), O_RDONLY | O_CLOEXEC)) < 0)
		err = errno;
	if (!err && pipe2(report, O_CLOEXEC) < 0)
		err = errno;
	if (err) {
		close(user_fd);
		if (pid_fd >= 0)
			close(pid_fd);
		errno = err;
		return -1;
	}
	helper = fork();
	if (helper == 0) {
		close(report[0]);
		if (setns(user_fd, CLONE_NEWUSER) < 0 || (pid_fd >= 0 && setns(pid_fd, CLONE_NEWPID) < 0))
			msg[0] = errno;
		else if ((msg[1] = clone(init_main, stack_top, (int)h->clone_flags | CLONE_PARENT, ia)) < 0)
			msg[0] = errno;
		_exit(write(report[1], msg, sizeof(msg)) == sizeof(msg) ? 0 : 1);
	}
	err = helper < 0 ? errno : 0;
	close(report[1]);
	close(user_fd);
	if (pid_fd >= 0)
		close(pid_fd);
	if (helper > 0) {
		if (read_full(report[0], msg, sizeof(msg)) != sizeof(msg))
			msg[0] = EPROTO;
		while (waitpid(helper, NULL, 0) < 0 && errno == EINTR)
			;
		err = msg[0];
	}
	close(report[0]);
	if (err) {
		errno = err;
		return -1;
	}
	return (pid_t)msg[1];
}

/* Map texts as triples of numbers, in order: the plan's ("0 1000 1\n") and the kernel's
 * (padded columns) say the same map when these are equal. */
static int same_map(const char *a, const char *b)
{
	for (;;) {
		char *ea, *eb;
		unsigned long long x, y;

		while (*a == ' ' || *a == '\t' || *a == '\n')
			a++;
		while (*b == ' ' || *b == '\t' || *b == '\n')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		x = strtoull(a, &ea, 10);
		y = strtoull(b, &eb, 10);
		if (ea == a || eb == b || x != y)
			return 0;
		a = ea;
		b = eb;
	}
}

/* The init's maps, as the plan's user_ns names them ("": not checked): 1 if they match. */
static int user_ns_maps_match(const void *plan, pid_t init)
{
	const struct nb_plan_header *h = plan;
	static const char *const files[2] = { "uid_map", "gid_map" };

	for (uint32_t i = 0; i < 2; i++) {
		const char *want = nb_plan_list_item(plan, h->user_ns, i + 1);
		char path[64], buf[4096];
		ssize_t n;
		int fd;

		if (!*want)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)init, files[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 0;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0)
			return 0;
		buf[n] = '\0';
		if (!same_map(want, buf))
			return 0;
	}
	return 1;
}

static void write_status(const char *path, int status)
{
	char tmp[4096], buf[64];
	int fd, n;

	if (!path)
		return;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d %lld\n", status, (long long)time(NULL));
	if (write(fd, buf, (size_t)n) == n && fsync(fd) == 0)
		rename(tmp, path);
	close(fd);
}

struct log {
	const char *path;
	int fd;
	uint64_t size;
	uint64_t max;
};

static void log_open(struct log *l)
{
	struct stat st;

	l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	l->size = (l->fd >= 0 && fstat(l->fd, &st) == 0) ? (uint64_t)st.st_size : 0;
}

/* Keep at most about 2 * max bytes on disk: the live log and one rotated file. */
static void log_write(struct log *l, const char *buf, size_t len)
{
	char old[4096];

	if (l->fd < 0)
		return;
	if (l->size + len > l->max && l->size > 0 &&
	    snprintf(old, sizeof(old), "%s.1", l->path) < (int)sizeof(old)) {
		close(l->fd);
		rename(l->path, old);
		log_open(l);
		if (l->fd < 0)
			return;
	}
	if (write(l->fd, buf, len) == (ssize_t)len)
		l->size += len;
}

/* One fd sent with SCM_RIGHTS (the init's NB_OP_CONSOLE), or -1. */
static int recv_one_fd(int sock)
{
	char data[1];
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			      .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	int fd;
	ssize_t n;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

/* Console text into the log without the pty's carriage returns (ONLCR). */
static void log_console(struct log *l, char *buf, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (buf[i] != '\r')
			buf[k++] = buf[i];
	if (k)
		log_write(l, buf, k);
}

/*
 * NB_PLAN_CONSOLE_LOG: copy the container's console (the pty master) into the log until
 * the init exits. We hold a slave open ourselves, so that a read never fails with EIO
 * while no process inside has the console open (systemd opens and closes it), and watch
 * the init through a pidfd: once it exits, what is left in the pty is read and we stop.
 */
static void console_until_exit(struct log *l, int master, pid_t init)
{
	char buf[16384];
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	int pidfd = (int)syscall(SYS_pidfd_open, init, 0);
	int done = 0;

	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	while (!done) {
		struct pollfd p[2] = { { .fd = master, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
		ssize_t n;

		if (poll(p, pidfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pidfd < 0 || p[1].revents)
			done = 1;
		while ((n = read(master, buf, sizeof(buf))) > 0)
			log_console(l, buf, (size_t)n);
		if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO)
			break;
		if (n < 0 && errno == EIO && slave < 0)
			break;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (slave >= 0)
		close(slave);
	close(master);
}


/*
 * The sealed copy of the plan's exec_copy binary (servers' novabox-init): read from the
 * host path here, in the host's mount namespace, into a memfd sealed against any change,
 * which the init executes with execveat(2). Inside the server /proc/1/exe is then that
 * memfd: nothing a process there opens through it reaches a file of the host (the class
 * of CVE-2019-5736), and the server's /dev needs no bind mount of a host binary.
 */
static int make_exec_copy(const char *path)
{
	struct stat st;
	off_t off = 0;
	int src, fd, err = 0;

	src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return errno;
	fd = memfd_create("novabox-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || fstat(src, &st) < 0) {
		err = errno;
		goto out;
	}
	while (off < st.st_size) {
		ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			goto out;
		}
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		err = errno;
		goto out;
	}
	nb_exec_copy_fd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	close(src);
	return err;
}

/*
 * Stdio relays. The caller's stdio is handed to the init as it is, except a regular file
 * (or a directory or block device): a process inside could reopen that through
 * /proc/self/fd/N and reach the host's file with its own access mode (as conmon, we pass
 * a pipe instead). The monitor keeps the file and copies between it and the pipe until
 * the init exits; then what is already in the pipes is copied and the relay ends, so a
 * command that leaves a background process behind still returns when it exits.
 */
struct relay {
	int from, to; /* -1 when done */
	int in;       /* the init's stdin: file -> pipe (non-blocking write end) */
	size_t len, off;
	char buf[16384];
};

static struct relay relays[3];
static int n_relays;

static int needs_relay(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return 0;
	return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode);
}

/* Put a pipe in place of stdio fd `fd` for the init; the monitor keeps the original. */
static int relay_setup(int fd)
{
	struct relay *r = &relays[n_relays];
	int p[2], orig;

	orig = fcntl(fd, F_DUPFD_CLOEXEC, 64);
	if (orig < 0 || pipe2(p, O_CLOEXEC) < 0)
		return errno;
	r->in = fd == 0;
	if (r->in) {
		dup2(p[0], 0);
		close(p[0]);
		r->from = orig;
		r->to = p[1];
		fcntl(p[1], F_SETFL, O_NONBLOCK);
	} else {
		dup2(p[1], fd);
		close(p[1]);
		r->from = p[0];
		r->to = orig;
	}
	r->len = r->off = 0;
	n_relays++;
	return 0;
}

static void relay_close(struct relay *r)
{
	if (r->from >= 0)
		close(r->from);
	if (r->to >= 0)
		close(r->to);
	r->from = r->to = -1;
}

/* One step of a relay: RELAY_MOVED (bytes moved), RELAY_WAIT (EAGAIN: nothing to do
 * now) or RELAY_DONE (end of input, or the reader is gone). */
enum { RELAY_MOVED, RELAY_WAIT, RELAY_DONE };

static int relay_step(struct relay *r)
{
	ssize_t n;

	if (r->len == r->off) {
		r->len = r->off = 0;
		do
			n = read(r->from, r->buf, sizeof(r->buf));
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EAGAIN)
			return RELAY_WAIT;
		if (n <= 0)
			return RELAY_DONE;
		r->len = (size_t)n;
	}
	do
		n = write(r->to, r->buf + r->off, r->len - r->off);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return RELAY_WAIT;
	if (n < 0)
		return RELAY_DONE; /* EPIPE: the reader is gone */
	r->off += (size_t)n;
	return RELAY_MOVED;
}

static void relay_until_exit(pid_t init)
{
	struct pollfd pf[4];
	int at[3], pidfd = (int)syscall(SYS_pidfd_open, init, 0), exited = 0, i, k, live;

	for (;;) {
		live = 0;
		k = 0;
		for (i = 0; i < n_relays; i++) {
			struct relay *r = &relays[i];

			at[i] = -1;
			if (r->from < 0)
				continue;
			live++;
			/* a file is always ready: poll the pipe's side only */
			at[i] = k;
			pf[k].fd = r->in ? r->to : r->from;
			pf[k].events = r->in ? POLLOUT : POLLIN;
			pf[k].revents = 0;
			k++;
		}
		if (!live)
			break;
		if (exited) {
			/* the init is gone: copy what the pipes already hold (non-blocking now),
			 * then stop; a background process it left may not keep us */
			for (i = 0; i < n_relays; i++) {
				struct relay *r = &relays[i];
				int guard = 0;

				if (r->from < 0)
					continue;
				/* bounded: 64 MiB at most once the init is gone */
				while (!r->in && guard++ < 4096 && relay_step(r) == RELAY_MOVED)
					;
				relay_close(r);
			}
			break;
		}
		if (pidfd >= 0) {
			pf[k].fd = pidfd;
			pf[k].events = POLLIN;
			pf[k].revents = 0;
		}
		if (poll(pf, (nfds_t)(k + (pidfd >= 0)), -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < n_relays; i++) {
			struct relay *r = &relays[i];

			if (at[i] < 0 || !pf[at[i]].revents)
				continue;
			if (relay_step(r) == RELAY_DONE)
				relay_close(r);
		}
		if (pidfd >= 0 && (pf[k].revents & POLLIN)) {
			exited = 1;
			for (i = 0; i < n_relays; i++) {
				if (relays[i].from >= 0 && !relays[i].in)
					fcntl(relays[i].from, F_SETFL, O_NONBLOCK);
			}
		}
	}
	if (pidfd >= 0)
		close(pidfd);
}

/*
 * NB_PLAN_RESTORE: criu, our init so far, restores the tree detached and exits; its root
 * is reparented to us (PR_SET_CHILD_SUBREAPER) before criu's exit is reported, so once
 * waitpid says criu exited with 0, the pid in the pidfile is a child of ours. The root's
 * pid, or -1 with criu's wait status in *status.
 */
static pid_t restored_root(pid_t criu, const char *pidfile, int *status)
{
	char buf[32] = { 0 };
	long pid;
	int fd;

	while (waitpid(criu, status, 0) < 0) {
		if (errno != EINTR) {
			*status = 255 << 8;
			return -1;
		}
	}
	if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
		return -1;
	fd = open(pidfile, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0) {
		if (fd >= 0)
			close(fd);
		*status = 254 << 8;
		return -1;
	}
	close(fd);
	pid = strtol(buf, NULL, 10);
	if (pid <= 1 || waitpid((pid_t)pid, NULL, WNOHANG) < 0) {
		/* not a child of ours (ECHILD): not the tree criu said it restored */
		*status = 254 << 8;
		return -1;
	}
	return (pid_t)pid;
}

/* The plan's on_exit program (argv, "", environment) in a child of ours, so that we exit at
 * once as without one (a stop waits for the monitor to go); the child is reparented. */
static void exec_on_exit(const void *plan, uint32_t list)
{
	uint32_t n = nb_plan_list_len(plan, list), i, k = 0;
	char **v = calloc((size_t)n + 2, sizeof(char *)), **envp;

	if (!v)
		return;
	for (i = 0; i < n && nb_plan_list_item(plan, list, i)[0]; i++)
		v[k++] = (char *)nb_plan_list_item(plan, list, i);
	v[k++] = NULL;
	envp = v + k;
	for (i++; i < n; i++)
		v[k++] = (char *)nb_plan_list_item(plan, list, i);
	v[k] = NULL;
	if (fork() == 0) {
		/* nothing of ours (the events pipe, relays, the log) goes with it */
		syscall(SYS_close_range, 3, ~0U, 0);
		setsid();
		execve(v[0], v, envp);
		_exit(127);
	}
	free(v);
}

/* An fd of ours moved to NB_FD_HIGH or above (close-on-exec), the old number closed;
 * left where it is under an RLIMIT_NOFILE too low for that (EINVAL). */
static int high_fd(int *fd)
{
	int to = fcntl(*fd, F_DUPFD_CLOEXEC, NB_FD_HIGH);

	if (to < 0)
		return errno == EINVAL ? 0 : -1;
	close(*fd);
	*fd = to;
	return 0;
}

int main(void)
{
	struct nb_plan_header *h;
	struct init_args ia;
	struct log log = { .fd = -1 };
	struct stat st;
	int err_pipe[2], out_pipe[2] = { -1, -1 }, status = 0, null_fd, placed = 0, cg_fd = -1;
	int userns_sock[2] = { -1, -1 }, userns_step = -1, console_rx = -1, scratch_hold = -1;
	pid_t userns_pid = -1;
	int32_t bad_op, msg[2];
	void *plan;
	char *stack;
	size_t stack_size = 256 * 1024;
	pid_t init;

	signal(SIGPIPE, SIG_IGN);
	/* Non-dumpable from the start, and so is the init, a copy of us, until its execve:
	 * a server exec's child is visible in the server's pid namespace from its birth, and
	 * without CAP_SYS_PTRACE nothing there may then open its /proc/<pid>/fd, cwd, root,
	 * exe or mem, or ptrace it (ptrace_may_access; CVE-2016-9962, CVE-2019-5736). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Processes that enter the container later (exec) are reparented to us. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	prctl(PR_SET_NAME, "novabox-monitor", 0, 0, 0);

	if (fstat(NB_FD_PLAN, &st) < 0 || st.st_size <= 0 || st.st_size > NB_PLAN_MAX_BYTES) {
		send_event(NB_EV_ERROR, NB_STAGE_PLAN, EINVAL);
		return 1;
	}
	plan = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, NB_FD_PLAN, 0);
	if (plan == MAP_FAILED || nb_plan_validate(plan, (uint32_t)st.st_size, &bad_op) < 0) {
		send_event(NB_EV_ERROR, NB_STAGE_PLAN, EINVAL);
		return 1;
	}
	close(NB_FD_PLAN);
	h = plan;

	/* The console socket is ours: the init sends us the pty master, whose output we log.
	 * First of all, while fd 6 is free and nothing of ours (the log) can be on it. */
	if ((h->flags & NB_PLAN_CONSOLE_LOG) && (h->flags & NB_PLAN_TTY) && (h->flags & NB_PLAN_LOG)) {
		int con[2];

		/* fd 6 is free here (no console socket from nb_spawn): the pair may land on it */
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, con) < 0 ||
		    (console_rx = fcntl(con[0], F_DUPFD_CLOEXEC, 10)) < 0 ||
		    (con[1] != NB_FD_CONSOLE && dup2(con[1], NB_FD_CONSOLE) < 0)) {
			send_event(NB_EV_ERROR, NB_STAGE_LOG, errno);
			return 1;
		}
		close(con[0]);
		if (con[1] != NB_FD_CONSOLE)
			close(con[1]);
	}

	if (h->flags & NB_PLAN_LOG) {
		log.path = nb_plan_str(plan, h->log_path);
		log.max = h->log_max_bytes ? h->log_max_bytes : (1u << 20);
		log_open(&log);
		if (log.fd < 0 || pipe2(out_pipe, O_CLOEXEC) < 0) {
			send_event(NB_EV_ERROR, NB_STAGE_LOG, errno);
			return 1;
		}
		/* The init writes into the pipe; we copy it into the log. */
		dup2(out_pipe[1], 1);
		dup2(out_pipe[1], 2);
		close(out_pipe[1]);
	}

	if (h->exec_copy) {
		int err = make_exec_copy(nb_plan_str(plan, h->exec_copy));
		if (err) {
			send_event(NB_EV_ERROR, NB_STAGE_EXEC_COPY, err);
			return 1;
		}
	}
	/* A regular file as stdio becomes a pipe the monitor relays (not with a console:
	 * the init's stdio is then the pty's slave). */
	if (!(h->flags & (NB_PLAN_TTY | NB_PLAN_DETACH))) {
		for (int fd = 0; fd < 3; fd++) {
			int err;

			if (fd > 0 && (h->flags & NB_PLAN_LOG))
				break;
			if (!needs_relay(fd))
				continue;
			if ((err = relay_setup(fd))) {
				send_event(NB_EV_ERROR, NB_STAGE_CLONE, err);
				return 1;
			}
		}
	}

	/* The container's cgroup before the clone: the init is born in its cgroup2
	 * directory (CLONE_INTO_CGROUP), and joins the v1 ones as its first ops. */
	if (h->n_cg_steps) {
		int32_t failed = -1;
		int err = nb_cg_create(plan, &failed);
		if (err) {
			send_event3(NB_EV_ERROR, NB_STAGE_CGROUP, err, failed);
			return 1;
		}
		cg_plan = plan;
	}

	/* Host paths first: after a setns into a container's mount namespace they would not
	 * resolve (server exec). */
	if (h->cgroup_dir)
		cg_fd = open(nb_plan_str(plan, h->cgroup_dir), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (h->join_pid)
		nb_preopen_cgroup_joins(plan);
	/* an exec into a server in its own user namespace: its stdio pipes as the init's */
	if (h->join_pid && (h->join_flags & CLONE_NEWUSER))
		nb_userns_stdio(nb_userns_proc_base((pid_t)h->join_pid, "uid_map"),
				nb_userns_proc_base((pid_t)h->join_pid, "gid_map"));
	if (h->join_pid) {
		/* setns(2) with a pidfd enters all the namespaces at once (Linux 5.8), and the
		 * pidfd cannot name a recycled pid. Joining a mount namespace needs a
		 * single-threaded caller, which this process is. */
		int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)h->join_pid, 0);
		if (pidfd < 0 || setns(pidfd, (int)h->join_flags) < 0) {
			return fail(NB_STAGE_JOIN, errno);
		}
		close(pidfd);
	}
	if (h->pid_ns && !h->user_ns) {
		/* an existing pid namespace (a pod's): setns(2) sets the one our children are born
		 * in, ours stays; the init is cloned into it below (with user_ns, by
		 * clone_in_userns: after the user namespace, which owns it) */
		int fd = open(nb_plan_str(plan, h->pid_ns), O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWPID) < 0)
			return fail(NB_STAGE_PID_NS, errno);
		close(fd);
	}
	if (pipe2(err_pipe, O_CLOEXEC) < 0 || high_fd(&err_pipe[0]) < 0 || high_fd(&err_pipe[1]) < 0) {
		return fail(NB_STAGE_CLONE, errno);
	}
	/* Our word to the init's NB_OP_USERNS: the maps are written (and its rootfs). */
	if (h->userns) {
		nb_userns_stdio(nb_userns_plan_base(plan, 0), nb_userns_plan_base(plan, 1));
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, userns_sock) < 0)
			return fail(NB_STAGE_CLONE, errno);
		nb_userns_sock = userns_sock[1];
	}
	stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		     -1, 0);
	if (stack == MAP_FAILED) {
		return fail(NB_STAGE_CLONE, errno);
	}
	ia.plan = plan;
	ia.err_w = err_pipe[1];
	ia.go_r = NB_FD_GO;
	ia.hold_r = ia.hold_w = -1;
	ia.tty = (h->flags & NB_PLAN_TTY) != 0;
	ia.late_ops = (h->flags & NB_PLAN_LATE_OPS) != 0;
	ia.n_drop = 0;
	ia.drop[ia.n_drop++] = NB_FD_EVENTS;
	ia.drop[ia.n_drop++] = err_pipe[0];
	if (cg_fd >= 0)
		ia.drop[ia.n_drop++] = cg_fd;
	if (log.fd >= 0)
		ia.drop[ia.n_drop++] = log.fd;
	if (out_pipe[0] >= 0)
		ia.drop[ia.n_drop++] = out_pipe[0];
	for (int i = 0; i < n_relays; i++) {
		ia.drop[ia.n_drop++] = relays[i].from;
		ia.drop[ia.n_drop++] = relays[i].to;
	}
	if (userns_sock[0] >= 0)
		ia.drop[ia.n_drop++] = userns_sock[0];
	if (console_rx >= 0)
		ia.drop[ia.n_drop++] = console_rx;
	init = -1;
	if (cg_fd >= 0 && !(h->flags & NB_PLAN_PLAIN_CLONE) && !h->user_ns) {
		init = clone_into(h->clone_flags, cg_fd);
		if (init == 0)
			init_main(&ia); /* never returns */
		if (init > 0)
			placed = 1;
	}
	/*
	 * An exec (join_pid) has entered the server's cgroup namespace by now: where cgroup2
	 * is mounted with nsdelegate (systemd's default on pure v2), neither clone3 into the
	 * server's cgroup nor a cgroup.procs write from here may move a task from outside
	 * that namespace (ENOENT). The exec'd process waits for the CLI's 'R', and the CLI,
	 * still in the host's cgroup namespace, places it (NB_EV_PID b=0) before sending it.
	 */
	if (init < 0 && h->join_pid && cg_fd >= 0) {
		close(cg_fd);
		cg_fd = -1;
	}
	/* clone(2) without CLONE_VM behaves like fork: the init gets its own copy. */
	if (init < 0) {
		int hold[2] = { -1, -1 };

		if (cg_fd >= 0 && pipe2(hold, O_CLOEXEC) < 0)
			return fail(NB_STAGE_CLONE, errno);
		ia.hold_r = hold[0];
		ia.hold_w = hold[1];
		if (h->user_ns) {
			init = clone_in_userns(plan, &ia, stack + stack_size);
			if (init < 0)
				return fail(NB_STAGE_USER_NS, errno);
		} else {
			init = clone(init_main, stack + stack_size, (int)h->clone_flags | SIGCHLD, &ia);
			if (init < 0)
				return fail(NB_STAGE_CLONE, errno);
		}
		if (h->user_ns && !user_ns_maps_match(plan, init)) {
			kill(init, SIGKILL);
			while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
				;
			send_event3(NB_EV_ERROR, NB_STAGE_USER_NS, EINVAL, 1);
			remove_cgroup();
			return 1;
		}
		/* its stdio pipes as the namespace's root's, as for a user namespace of its own */
		if (h->user_ns)
			nb_userns_stdio(nb_userns_proc_base(init, "uid_map"), nb_userns_proc_base(init, "gid_map"));
		if (cg_fd >= 0) {
			int err = place_init(cg_fd, init);

			close(hold[0]);
			if (!err && write(hold[1], "P", 1) != 1)
				err = errno;
			close(hold[1]); /* unsent: the init exits before its first op */
			if (err) {
				while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
					;
				return fail(NB_STAGE_PLACE, err);
			}
			placed = 1;
		}
	}
	if (cg_fd >= 0)
		close(cg_fd);
	if (h->userns) {
		int err;

		close(userns_sock[1]);
		userns_pid = init;
		if (h->flags & NB_PLAN_RESTORE)
			userns_pid = nb_userns_scratch(&scratch_hold);
		err = userns_pid < 0 ? errno : nb_userns_maps(plan, userns_pid);
		if (err && scratch_hold >= 0) {
			close(scratch_hold);
			while (waitpid(userns_pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		if (err) {
			kill(init, SIGKILL);
			while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
				;
			send_event3(NB_EV_ERROR, NB_STAGE_USERNS, err, 0);
			remove_cgroup();
			return 1;
		}
	}
	nb_close_preopened();
	if (nb_exec_copy_fd >= 0)
		close(nb_exec_copy_fd);
	munmap(stack, stack_size);
	close(err_pipe[1]);
	close(NB_FD_GO);
	if (ia.tty)
		close(NB_FD_CONSOLE); /* the init holds it; EOF tells the CLI it failed */
	if (ia.late_ops)
		close(NB_FD_OPS);
	/* The container owns its stdio now; we must not hold a terminal or pipe open. */
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		dup2(null_fd, 0);
		dup2(null_fd, 1);
		dup2(null_fd, 2);
		close(null_fd);
	}
	send_event(NB_EV_PID, init, placed);
	if (userns_sock[0] >= 0) {
		nb_userns_serve(plan, init, userns_pid, userns_sock[0], &userns_step);
		close(userns_sock[0]);
		if (scratch_hold >= 0) {
			/* the overlay holds its idmapped layers: the scratch namespace's process goes */
			close(scratch_hold);
			while (waitpid(userns_pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
	}

	if (read_full(err_pipe[0], msg, sizeof(msg)) == sizeof(msg)) {
		if (msg[0] == NB_OPFAIL_GATE && (h->flags & NB_PLAN_DETACH)) {
			/* the init waits for `start`: it is the caller's subreaper's to reap */
			send_event(NB_EV_GATE, init, 0);
			if (!h->join_pid)
				return 0;
			/* an exec (`exec --detach`): its execve's outcome first, then the same */
			if (read_full(err_pipe[0], msg, sizeof(msg)) != sizeof(msg)) {
				send_event(NB_EV_EXEC, 0, 0);
				return 0;
			}
		}
		send_event3(NB_EV_OPFAIL, msg[0], msg[1], userns_step + 1);
	} else
		send_event(NB_EV_EXEC, 0, 0);
	close(err_pipe[0]);

	if (h->flags & NB_PLAN_RESTORE) {
		pid_t root = restored_root(init, nb_plan_str(plan, h->restore_pidfile), &status);

		if (root < 0) {
			send_event(NB_EV_RESTORED, -1, status);
			write_status(nb_plan_str(plan, h->status_path), status);
			send_event3(NB_EV_EXIT, status, 0, -1);
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			remove_cgroup();
			return 1;
		}
		init = root;
		send_event(NB_EV_RESTORED, root, 0);
	}

	if (console_rx >= 0) {
		int master = recv_one_fd(console_rx);

		close(console_rx);
		if (master >= 0)
			console_until_exit(&log, master, init);
	}
	if (n_relays)
		relay_until_exit(init);
	if (out_pipe[0] >= 0) {
		char buf[16384];
		ssize_t n;

		while ((n = read(out_pipe[0], buf, sizeof(buf))) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			log_write(&log, buf, (size_t)n);
		}
		close(out_pipe[0]);
	}

	while (waitpid(init, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 255 << 8;
			break;
		}
	}
	write_status(nb_plan_str(plan, h->status_path), status);
	/* the OOM kills are read before the cgroup goes: the CLI explains a SIGKILL with them
	 * (only a SIGKILL needs explaining: other exits skip the read) */
	send_event3(NB_EV_EXIT, status, 0,
		    cg_plan && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? nb_cg_oom_count(cg_plan) : -1);
	/* Reap whatever was reparented to us (exec'd processes), without blocking. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	remove_cgroup();
	if (h->on_exit)
		exec_on_exit(plan, h->on_exit);
	return 0;
}
