/*
 * Unprivileged tests of the plan's cgroup steps: validation (plan.c) and the monitor's
 * executor (cgroup.c) run on a temp directory with the files a cgroupfs would have.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "novabox.h"
#include "internal.h"

static int passed, failed;

#define CHECK(name, cond) do { \
	if (cond) { passed++; } else { failed++; fprintf(stderr, "FAIL %s (%s:%d)\n", name, __FILE__, __LINE__); } \
} while (0)

static _Alignas(8) unsigned char buf[8192];
static uint32_t used; /* bytes of buf in use */
static struct nb_cg_step steps[16];
static uint32_t n_steps;
static char *s0s[16], *s1s[16];
static char root[] = "/tmp/nb-cgroup-test-XXXXXX";

static uint32_t str(const char *s)
{
	uint32_t at = used;

	memcpy(buf + used, s, strlen(s) + 1);
	used += (uint32_t)strlen(s) + 1;
	return at;
}

static char *path(const char *rel)
{
	static char p[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(p[i], sizeof(p[i]), "%s/%s", root, rel);
	return p[i];
}

static void step(uint32_t kind, uint32_t flags, const char *s0, const char *s1)
{
	steps[n_steps] = (struct nb_cg_step){ .kind = kind, .flags = flags };
	s0s[n_steps] = strdup(s0);
	s1s[n_steps] = s1 ? strdup(s1) : NULL;
	n_steps++;
}

/* header + 1 exec op + the steps + strings */
static uint32_t build(void)
{
	struct nb_plan_header *h = (void *)buf;
	struct nb_op *op = (void *)(buf + sizeof(*h));
	struct nb_cg_step *st = (void *)(buf + sizeof(*h) + sizeof(*op));
	uint32_t i, list, one = 1;

	memset(buf, 0, sizeof(buf));
	used = (uint32_t)(sizeof(*h) + sizeof(*op) + n_steps * sizeof(*st));
	h->magic = NB_PLAN_MAGIC;
	h->abi = NB_ABI_VERSION;
	h->n_ops = 1;
	h->n_cg_steps = n_steps;
	op->kind = NB_OP_EXEC;
	op->s[0] = str("true");
	for (i = 0; i < n_steps; i++) {
		st[i].kind = steps[i].kind;
		st[i].flags = steps[i].flags;
		st[i].s0 = str(s0s[i]);
		st[i].s1 = s1s[i] ? str(s1s[i]) : 0;
	}
	used = (used + 3) & ~3u;
	list = used;
	memcpy(buf + used, &one, 4);
	memcpy(buf + used + 4, &op->s[0], 4);
	used += 8;
	op->list = list;
	h->size = used;
	return used;
}

static void reset(void)
{
	n_steps = 0;
}

static void put(const char *rel, const char *text)
{
	int fd = open(path(rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("write");
		close(fd);
	}
}

static const char *get(const char *rel)
{
	static char text[256];
	ssize_t n;
	int fd = open(path(rel), O_RDONLY);

	text[0] = '\0';
	if (fd < 0)
		return "(missing)";
	n = read(fd, text, sizeof(text) - 1);
	text[n > 0 ? n : 0] = '\0';
	close(fd);
	return text;
}

static int exists(const char *rel)
{
	struct stat st;

	return stat(path(rel), &st) == 0;
}

int main(void)
{
	int32_t bad, idx;
	uint32_t len;
	struct nb_plan_header *h = (void *)buf;
	struct nb_cg_step *st = (void *)(buf + sizeof(struct nb_plan_header) + sizeof(struct nb_op));

	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}

	/* ---- validation ---- */
	reset();
	step(NB_CG_MKDIR, 0, path("a"), NULL);
	step(NB_CG_WRITE, NB_CGF_OPTIONAL, path("a/pids.max"), "5");
	len = build();
	CHECK("valid steps", nb_plan_validate(buf, len, &bad) == 0);
	st[1].s1 = 0;
	CHECK("write without a value", nb_plan_validate(buf, len, &bad) == -EINVAL && bad == 2);
	len = build();
	st[0].kind = 99;
	CHECK("unknown step kind", nb_plan_validate(buf, len, &bad) == -EINVAL && bad == 1);
	len = build();
	st[0].flags = 0x80;
	CHECK("unknown step flag", nb_plan_validate(buf, len, &bad) == -EINVAL && bad == 1);
	len = build();
	h->n_cg_steps = 200;
	CHECK("steps past the end", nb_plan_validate(buf, len, &bad) == -EINVAL);
	reset();
	step(NB_CG_MKDIR, 0, "relative/dir", NULL);
	len = build();
	CHECK("relative cgroup path", nb_plan_validate(buf, len, &bad) == -EINVAL && bad == 1);
	len = build();
	h->userns = 1;
	CHECK("a userns list at a bad offset", nb_plan_validate(buf, len, &bad) == -EINVAL);

	/* ---- execution on a directory that imitates cgroupfs ---- */
	put("cgroup.subtree_control", "cpu memory\n");
	put("cpuset.cpus", "0-3\n");
	reset();
	step(NB_CG_ENABLE, 0, path("cgroup.subtree_control"), "memory cpu pids");
	step(NB_CG_MKDIR, 0, path("p"), NULL);
	step(NB_CG_MKDIR, NB_CGF_EXCL, path("p/c"), NULL);
	step(NB_CG_INHERIT, 0, path("p/c/cpuset.cpus"), path("cpuset.cpus"));
	step(NB_CG_WRITE, 0, path("p/c/pids.max"), "64");
	step(NB_CG_WRITE, NB_CGF_OPTIONAL, path("p/c/memory.swap.max"), "0");
	step(NB_CG_OOM_COUNT, 0, path("p/c/memory.events"), "oom_kill");
	step(NB_CG_RMDIR, 0, path("p/c"), NULL);
	len = build();
	CHECK("executed plan is valid", nb_plan_validate(buf, len, &bad) == 0);
	/* the kernel fills a new cgroup with its files; a plain mkdir does not */
	CHECK("a missing file fails at its step", nb_cg_create(buf, &idx) == ENOENT && idx == 3);
	CHECK("the failure removed what it made", !exists("p/c") && !exists("p"));
	mkdir(path("p"), 0755);
	mkdir(path("p/c"), 0755);
	put("p/c/cpuset.cpus", "\n");
	put("p/c/pids.max", "max\n");
	CHECK("an existing cgroup is EEXIST at its mkdir", nb_cg_create(buf, &idx) == EEXIST && idx == 2);
	CHECK("an existing parent is kept", exists("p") && exists("p/c"));
	/* pre-made files stand in for the kernel's: move them aside, let mkdir make p/c */
	unlink(path("p/c/cpuset.cpus"));
	unlink(path("p/c/pids.max"));
	rmdir(path("p/c"));
	put("cgroup.subtree_control", "cpu memory\n");
	{
		/* a mkdir hook is not possible here: run the plan without its exclusive level */
		st[2].flags = 0;
		mkdir(path("p/c"), 0755);
		put("p/c/cpuset.cpus", "\n");
		put("p/c/pids.max", "max\n");
		put("p/c/memory.events", "low 0\noom 2\noom_kill 3\n");
		CHECK("the whole creation runs", nb_cg_create(buf, &idx) == 0);
		CHECK("enable wrote only the missing controller", strcmp(get("cgroup.subtree_control"), "+pids") == 0);
		CHECK("cpuset inherited", strcmp(get("p/c/cpuset.cpus"), "0-3") == 0);
		CHECK("limit written", strcmp(get("p/c/pids.max"), "64") == 0);
		CHECK("optional missing file skipped", !exists("p/c/memory.swap.max"));
		CHECK("oom count read", nb_cg_oom_count(buf) == 3);
	}
	/* rmdir of a non-empty plain directory is ENOTEMPTY, not EBUSY: no retry */
	CHECK("removal reports the failing step", nb_cg_remove(buf, &idx) == ENOTEMPTY && idx == 7);
	CHECK("a failed removal keeps the cgroup", exists("p/c"));
	unlink(path("p/c/cpuset.cpus"));
	unlink(path("p/c/pids.max"));
	unlink(path("p/c/memory.events"));
	CHECK("removal", nb_cg_remove(buf, &idx) == 0 && idx == -1);
	CHECK("the cgroup is gone, its parent stays", !exists("p/c") && exists("p"));
	CHECK("removal is idempotent", nb_cg_remove(buf, &idx) == 0);

	rmdir(path("p"));
	unlink(path("cgroup.subtree_control"));
	unlink(path("cpuset.cpus"));
	rmdir(root);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
