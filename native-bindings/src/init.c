/*
 * novabox-init: pid 1 of a server (a long-lived container), executed from a per-host copy
 * of this binary bound read-only at /dev/.novabox-init (runtime/server.ts, initCopy), in
 * the spirit of tini and catatonit.
 *
 *   novabox-init                 idle: keep the server up, reap orphans
 *   novabox-init -- CMD ARGS...  run CMD as a child; the server lives as long as it does
 *
 * A pid 1 ignores every signal it has no handler for (pid_namespaces(7)), so a plain
 * `sleep` as init could never be stopped gracefully. Here every signal is taken with
 * sigwaitinfo: SIGTERM (and INT, HUP, QUIT, USR1, USR2, WINCH) is forwarded to CMD; when
 * idle, SIGTERM/SIGINT/SIGPWR ask every process of the namespace to stop (kill(-1)) and
 * init exits once its children are gone. Orphans reparented to pid 1 are reaped, so
 * processes started by `server exec` never pile up as zombies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

int main(int argc, char **argv)
{
	sigset_t all;
	pid_t child = 0;
	int stopping = 0;

	prctl(PR_SET_NAME, "novabox-init", 0, 0, 0);
	/* Pid 1 of the server leads its own session (a console already made it one: EPERM,
	 * harmless): else its session is the monitor's, outside the server's pid namespace,
	 * and CRIU refuses to dump the server ("a session leader ... is outside of its pid
	 * namespace"). */
	if (getpid() == 1) {
		struct stat st;

		setsid();
		/* Standard input /dev/null as the monitor opened it lives on the host's /dev, a
		 * mount outside the server that CRIU cannot dump: the server's own /dev/null (the
		 * same device) takes its place. A console or a pipe stays. */
		if (fstat(0, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
			int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

			if (fd >= 0) {
				dup3(fd, 0, 0);
				close(fd);
			}
		}
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);

	if (argc > 2 && strcmp(argv[1], "--") == 0) {
		child = fork();
		if (child < 0) {
			perror("novabox-init: fork");
			return 125;
		}
		if (child == 0) {
			sigprocmask(SIG_UNBLOCK, &all, NULL);
			execvp(argv[2], argv + 2);
			fprintf(stderr, "novabox-init: exec %s: %s\n", argv[2], strerror(errno));
			_exit(errno == ENOENT ? 127 : 126);
		}
	} else if (argc > 1) {
		fprintf(stderr, "usage: novabox-init [-- command [args...]]\n");
		return 125;
	}

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);

		if (sig < 0) {
			if (errno == EINTR)
				continue;
			return 125;
		}
		if (sig == SIGCHLD) {
			int status;
			pid_t p;

			while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
				if (child && p == child)
					return exit_code_of(status);
			}
			/* Idle and asked to stop: done once nothing is left. */
			if (stopping && p < 0 && errno == ECHILD)
				return 0;
			continue;
		}
		if (child) {
			kill(child, sig);
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT || sig == SIGPWR) {
			stopping = 1;
			kill(-1, SIGTERM);
			if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
				return 0;
		}
	}
}
