/*
 * The container's cgroup, made and removed by the monitor (NB_CG_* steps of the plan,
 * planned in TypeScript by src/runtime/cgroups: the knowledge of v1, hybrid and v2
 * layouts stays there; this file only runs the steps). Creation happens before the
 * clone, so that the init can be born in its cgroup2 directory; removal once the init
 * was reaped. Neither then sits on the CLI's critical path: the CLI does its own work
 * (container directory, state) meanwhile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "novabox.h"
#include "internal.h"

#define RMDIR_TIMEOUT_MS 2000
#define CREATE_ATTEMPTS 5

/* which mkdir steps made their directory (removed again if a later step fails) */
static unsigned char made[NB_PLAN_MAX_CG_STEPS];

static int write_file(const char *path, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return errno;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		err = errno;
	else if ((size_t)n != len)
		err = EIO;
	close(fd);
	return err;
}

/* The file's text, NUL-terminated and cut at buflen - 1 bytes. 0 or errno. */
static int read_file(const char *path, char *buf, size_t buflen)
{
	size_t got = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	while (got < buflen - 1) {
		n = read(fd, buf + got, buflen - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	return 0;
}

static int blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\n' && *s != '\t')
			return 0;
	return 1;
}

/* Is `word` (len bytes) one of the space/newline-separated words of `list`? */
static int has_word(const char *list, const char *word, size_t len)
{
	const char *p = list;

	while (*p) {
		size_t n;
		while (*p == ' ' || *p == '\n')
			p++;
		n = strcspn(p, " \n");
		if (n == len && memcmp(p, word, len) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* "+memory +pids" for the controllers of `wanted` not yet in the subtree_control file */
static int enable(const char *file, const char *wanted)
{
	char cur[1024], out[1024];
	const char *p = wanted;
	size_t used = 0;
	int err;

	if ((err = read_file(file, cur, sizeof(cur))) != 0)
		return err;
	while (*p) {
		size_t n;
		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n && !has_word(cur, p, n)) {
			if (used + n + 3 > sizeof(out))
				return E2BIG;
			if (used)
				out[used++] = ' ';
			out[used++] = '+';
			memcpy(out + used, p, n);
			used += n;
		}
		p += n;
	}
	out[used] = '\0';
	return used ? write_file(file, out) : 0;
}

static int inherit(const char *file, const char *from)
{
	char cur[4096], val[4096];
	size_t len;
	int err;

	if ((err = read_file(file, cur, sizeof(cur))) != 0)
		return err;
	if (!blank(cur))
		return 0;
	if ((err = read_file(from, val, sizeof(val))) != 0)
		return err;
	len = strlen(val);
	while (len && (val[len - 1] == '\n' || val[len - 1] == ' '))
		val[--len] = '\0';
	return write_file(file, val);
}

static void undo(const struct nb_cg_step *steps, uint32_t upto, const void *plan)
{
	uint32_t i;

	for (i = upto; i-- > 0;) {
		if (made[i])
			rmdir(nb_plan_str(plan, steps[i].s0));
		made[i] = 0;
	}
}

static int create_once(const void *plan, int32_t *failed)
{
	const struct nb_plan_header *h = plan;
	const struct nb_cg_step *steps = nb_plan_cg_steps(plan);
	uint32_t i;

	for (i = 0; i < h->n_cg_steps; i++) {
		const struct nb_cg_step *st = &steps[i];
		const char *s0 = nb_plan_str(plan, st->s0), *s1 = nb_plan_str(plan, st->s1);
		int err = 0;

		switch (st->kind) {
		case NB_CG_MKDIR:
			if (mkdir(s0, 0755) == 0)
				made[i] = 1;
			else if (errno != EEXIST || (st->flags & NB_CGF_EXCL))
				err = errno;
			break;
		case NB_CG_ENABLE:
			err = enable(s0, s1);
			break;
		case NB_CG_INHERIT:
			err = inherit(s0, s1);
			break;
		case NB_CG_WRITE:
			err = write_file(s0, s1);
			if (err == ENOENT && (st->flags & NB_CGF_OPTIONAL))
				err = 0;
			break;
		case NB_CG_DEVICES:
			err = -nb_cgroup_devices_allow(s0, s1);
			break;
		case NB_CG_CHOWN: {
			/* "uid:gid", both decimal: checked here, the plan validator only saw a string */
			char *end;
			unsigned long uid = strtoul(s1, &end, 10), gid;

			if (end == s1 || *end != ':') {
				err = EINVAL;
				break;
			}
			gid = strtoul(end + 1, &end, 10);
			if (*end || uid > 0xfffffffeul || gid > 0xfffffffeul)
				err = EINVAL;
			else if (chown(s0, (uid_t)uid, (gid_t)gid) < 0)
				err = errno;
			break;
		}
		default: /* removal steps */
			break;
		}
		if (err) {
			*failed = (int32_t)i;
			undo(steps, i, plan);
			return err;
		}
	}
	return 0;
}

int nb_cg_create(const void *plan, int32_t *failed)
{
	int attempt, err = 0;

	/* A level that vanished under us (the parent removed between our mkdirs, by an
	 * administrator or an older novabox that pruned it): ENOENT once gone, ENODEV while
	 * the kernel still removes it. Start over. */
	for (attempt = 1; attempt <= CREATE_ATTEMPTS; attempt++) {
		*failed = -1;
		err = create_once(plan, failed);
		if (err != ENOENT && err != ENODEV)
			break;
	}
	return err;
}

int nb_cg_oom_count(const void *plan)
{
	const struct nb_plan_header *h = plan;
	const struct nb_cg_step *steps = nb_plan_cg_steps(plan);
	char buf[4096];
	uint32_t i;

	for (i = 0; i < h->n_cg_steps; i++) {
		const char *key, *p;
		size_t klen;

		if (steps[i].kind != NB_CG_OOM_COUNT)
			continue;
		if (read_file(nb_plan_str(plan, steps[i].s0), buf, sizeof(buf)) != 0)
			return -1;
		key = nb_plan_str(plan, steps[i].s1);
		klen = strlen(key);
		for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
			if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
				return atoi(p + klen + 1);
		}
		return -1;
	}
	return -1;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* SIGKILL what is left in the cgroup (a run's pid namespace dies with its init, so
 * normally nothing), thawing a v1 freezer cgroup so that the kill lands. */
static void kill_inside(const char *dir)
{
	char path[4096], buf[8192];
	char *p, *end;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) < (int)sizeof(path) &&
	    read_file(path, buf, sizeof(buf)) == 0) {
		for (p = buf; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			if (pid > 0)
				kill((pid_t)pid, SIGKILL);
		}
	}
	if (snprintf(path, sizeof(path), "%s/freezer.state", dir) < (int)sizeof(path) &&
	    read_file(path, buf, sizeof(buf)) == 0 && strncmp(buf, "THAWED", 6) != 0)
		write_file(path, "THAWED");
}

static int remove_dir(const char *dir, long deadline)
{
	struct timespec pause = { 0, 5 * 1000 * 1000 };

	for (;;) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || now_ms() >= deadline)
			return errno;
		kill_inside(dir);
		/* the monitor is a subreaper: processes of the container may be its children */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		nanosleep(&pause, NULL);
	}
}

int nb_cg_remove(const void *plan, int32_t *failed)
{
	const struct nb_plan_header *h = plan;
	const struct nb_cg_step *steps = nb_plan_cg_steps(plan);
	long deadline = now_ms() + RMDIR_TIMEOUT_MS;
	int first = 0;
	uint32_t i;

	*failed = -1;
	for (i = 0; i < h->n_cg_steps; i++) {
		const char *dir = nb_plan_str(plan, steps[i].s0);
		int err;

		if (steps[i].kind != NB_CG_RMDIR)
			continue;
		err = remove_dir(dir, deadline);
		if (err && !first) {
			first = err;
			*failed = (int32_t)i;
		}
	}
	return first;
}
