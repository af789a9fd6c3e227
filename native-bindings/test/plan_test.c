/* Unprivileged tests of nb_plan_validate: a malformed plan never reaches the monitor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "novabox.h"

static int passed, failed;

#define CHECK(name, cond) do { \
	if (cond) { passed++; } else { failed++; fprintf(stderr, "FAIL %s (%s:%d)\n", name, __FILE__, __LINE__); } \
} while (0)

/* header + 1 exec op + strings: "true\0" at B (the byte after the op), list at B + 8 {1, B};
 * every offset below counts from B, so the header can grow */
#define B ((uint32_t)(sizeof(struct nb_plan_header) + sizeof(struct nb_op)))
static _Alignas(8) unsigned char buf[256];

static void good_plan(void)
{
	struct nb_plan_header *h = (void *)buf;
	struct nb_op *op = (void *)(buf + sizeof(*h));
	uint32_t list[2] = { 1, B };

	memset(buf, 0, sizeof(buf));
	h->magic = NB_PLAN_MAGIC;
	h->abi = NB_ABI_VERSION;
	h->size = (B + 16);
	h->n_ops = 1;
	op->kind = NB_OP_EXEC;
	op->s[0] = B;
	op->list = (B + 8);
	memcpy(buf + B, "true", 5);
	memcpy(buf + (B + 8), list, sizeof(list));
}

int main(void)
{
	struct nb_plan_header *h = (void *)buf;
	struct nb_op *op = (void *)(buf + sizeof(*h));
	int32_t bad;

	good_plan();
	CHECK("valid plan", nb_plan_validate(buf, (B + 16), &bad) == 0 && bad == -1);

	good_plan();
	h->magic = 0;
	CHECK("bad magic", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	h->abi = 99;
	CHECK("bad abi", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	CHECK("size mismatch", nb_plan_validate(buf, (B + 12), &bad) == -EINVAL);

	good_plan();
	h->n_ops = 3;
	CHECK("ops beyond the end", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	op->s[0] = 4000;
	CHECK("string offset out of range", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL && bad == 0);

	good_plan();
	op->s[1] = 8; /* inside the header */
	CHECK("string offset inside the header", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	memset(buf + B, 'x', 16); /* no NUL before the end */
	op->list = 0;
	op->s[0] = B;
	CHECK("unterminated string", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	((uint32_t *)(buf + (B + 8)))[0] = 1000; /* list count runs past the end */
	CHECK("list past the end", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	op->kind = NB_OP_NO_NEW_PRIVS;
	CHECK("last op must be exec", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL && bad == 0);

	good_plan();
	op->kind = 77;
	CHECK("unknown op kind", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL && bad == 0);

	good_plan();
	h->flags = NB_PLAN_LOG;
	CHECK("log flag without a path", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	h->n_ops = 0;
	CHECK("no ops", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	h->n_ops = 0;
	h->flags = NB_PLAN_LATE_OPS;
	CHECK("a monitor's plan without ops (late ops)", nb_plan_validate(buf, (B + 16), &bad) == 0);

	good_plan();
	h->flags = NB_PLAN_LATE_OPS;
	CHECK("late ops with ops", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	CHECK("misaligned plan", nb_plan_validate(buf + 1, (B + 16), &bad) == -EINVAL);

	good_plan();
	h->exec_copy = B; /* "true": relative */
	CHECK("a relative exec_copy path", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	good_plan();
	((struct nb_op *)(buf + sizeof(*h)))->op_flags = NB_OPF_SEALED;
	CHECK("a sealed exec without exec_copy", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL && bad == 0);

	good_plan();
	memcpy(buf + B, "/tru", 5);
	h->exec_copy = B;
	((struct nb_op *)(buf + sizeof(*h)))->op_flags = NB_OPF_SEALED;
	CHECK("a sealed exec of exec_copy", nb_plan_validate(buf, (B + 16), &bad) == 0);

	/* a user namespace: maps "0 1 2\n" at (B + 16), "" at (B + 24), "/l" at (B + 26); the list at (B + 32) */
	{
		uint32_t none[8] = { 7, (B + 16), (B + 16), (B + 24), (B + 24), (B + 24), (B + 24), (B + 24) };
		uint32_t rootfs[9] = { 8, (B + 16), (B + 16), (B + 26), (B + 26), (B + 24), (B + 24), (B + 26), (B + 26) };

		good_plan();
		memcpy(buf + (B + 16), "0 1 2\n", 7);
		memcpy(buf + (B + 26), "/l", 3);
		memcpy(buf + (B + 32), none, sizeof(none));
		h->size = (B + 72);
		h->userns = (B + 32);
		h->clone_flags = 0x10000000; /* CLONE_NEWUSER */
		CHECK("a userns with maps and no rootfs", nb_plan_validate(buf, (B + 72), &bad) == 0);
		h->clone_flags = 0;
		CHECK("a userns list without CLONE_NEWUSER", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
		/* a restore's: criu stays in our namespace, the rootfs is idmapped into a scratch one */
		h->flags |= NB_PLAN_RESTORE;
		h->restore_pidfile = (B + 26);
		CHECK("a restore's userns list without CLONE_NEWUSER", nb_plan_validate(buf, (B + 72), &bad) == 0);
		h->clone_flags = 0x10000000;
		CHECK("a restore's userns list with CLONE_NEWUSER", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
		h->flags &= ~NB_PLAN_RESTORE;
		h->restore_pidfile = 0;
		h->clone_flags = 0x10000000;
		h->join_pid = 7;
		CHECK("a userns list for an exec (join)", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
		h->join_pid = 0;
		none[1] = (B + 24);
		memcpy(buf + (B + 32), none, sizeof(none));
		CHECK("a userns with an empty uid_map", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
		memcpy(buf + (B + 32), rootfs, sizeof(rootfs));
		CHECK("a userns rootfs with an upper, a work dir and a lower", nb_plan_validate(buf, (B + 72), &bad) == 0);
		rootfs[8] = (B + 16); /* "0 1 2": not absolute */
		memcpy(buf + (B + 32), rootfs, sizeof(rootfs));
		CHECK("a userns rootfs with a relative lower", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
		rootfs[8] = (B + 26);
		rootfs[7] = (B + 16);
		memcpy(buf + (B + 32), rootfs, sizeof(rootfs));
		CHECK("a userns rootfs with a relative stage", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
		rootfs[7] = (B + 26);
		rootfs[0] = 7;
		memcpy(buf + (B + 32), rootfs, sizeof(rootfs));
		CHECK("a userns rootfs without a lower", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);

		/* a user namespace joined by path: {"/l", "0 1 2\n", ""} */
		{
			uint32_t joined[4] = { 3, (B + 26), (B + 16), (B + 24) };

			h->userns = 0;
			h->clone_flags = 0;
			memcpy(buf + (B + 32), joined, sizeof(joined));
			h->user_ns = (B + 32);
			CHECK("a user namespace joined by path", nb_plan_validate(buf, (B + 72), &bad) == 0);
			h->clone_flags = 0x10000000;
			CHECK("a user namespace joined with CLONE_NEWUSER", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
			h->clone_flags = 0;
			h->join_pid = 7;
			CHECK("a user namespace joined by an exec", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
			h->join_pid = 0;
			joined[1] = (B + 16);
			memcpy(buf + (B + 32), joined, sizeof(joined));
			CHECK("a user namespace joined by a relative path", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
			joined[0] = 2;
			joined[1] = (B + 26);
			memcpy(buf + (B + 32), joined, sizeof(joined));
			CHECK("a user namespace joined without its two maps", nb_plan_validate(buf, (B + 72), &bad) == -EINVAL);
			h->user_ns = 0;
		}

		good_plan();
		op->kind = NB_OP_USERNS;
		CHECK("NB_OP_USERNS without the header's userns", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL && bad == 0);
	}

	/* on_exit: the exec's argv list {"true"} doubles as it */
	good_plan();
	h->on_exit = (B + 8);
	CHECK("an on_exit program with a relative path", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);
	memcpy(buf + B, "/tru", 5);
	CHECK("an on_exit program", nb_plan_validate(buf, (B + 16), &bad) == 0);
	h->on_exit = (B + 12);
	CHECK("an on_exit list out of place", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);
	h->on_exit = 0;
	h->pid_ns = 1;
	CHECK("a pid namespace path inside the header", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL);

	/* op flags only on the ops that take them: the one op here is the exec */
	good_plan();
	((struct nb_op *)(buf + sizeof(*h)))->op_flags = NB_OPF_KEEP_CAPS;
	CHECK("keep-caps on an op other than setuid", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL && bad == 0);
	((struct nb_op *)(buf + sizeof(*h)))->op_flags = NB_OPF_CHROOT;
	CHECK("chroot on an op other than pivot_root", nb_plan_validate(buf, (B + 16), &bad) == -EINVAL && bad == 0);

	CHECK("abi version", nb_abi_version() == NB_ABI_VERSION);

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
