/* Plan validation and accessors shared by libnovabox.so and novabox-monitor. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "novabox.h"
#include "internal.h"

#define CLONE_NEWUSER_BIT 0x10000000u /* <sched.h>'s CLONE_NEWUSER, without _GNU_SOURCE */
#define CLONE_NEWPID_BIT 0x20000000u  /* and its CLONE_NEWPID */

static int str_ok(const char *base, uint32_t size, uint32_t off)
{
	if (off == 0)
		return 1;
	if (off < sizeof(struct nb_plan_header) || off >= size)
		return 0;
	return memchr(base + off, '\0', size - off) != NULL;
}

static int list_ok(const char *base, uint32_t size, uint32_t off)
{
	uint32_t count, i, s;

	if (off == 0)
		return 1;
	if (off % 4 || off < sizeof(struct nb_plan_header) || (uint64_t)off + 4 > size)
		return 0;
	memcpy(&count, base + off, 4);
	if ((uint64_t)off + 4 + (uint64_t)count * 4 > size)
		return 0;
	for (i = 0; i < count; i++) {
		memcpy(&s, base + off + 4 + 4 * i, 4);
		if (s == 0 || !str_ok(base, size, s))
			return 0;
	}
	return 1;
}

/* The header's userns list (novabox.h): maps, then an optional rootfs with absolute lowers. */
static int userns_ok(const char *base, uint32_t size)
{
	const struct nb_plan_header *h = (const void *)base;
	uint32_t n, i;

	if (h->userns == 0)
		return 1;
	/* the init's own namespace; a restore's init (criu) stays in ours, and the rootfs is
	 * idmapped into a scratch namespace of the same maps (userns.c nb_userns_scratch) */
	if (!list_ok(base, size, h->userns) || h->join_pid ||
	    !(h->flags & NB_PLAN_RESTORE) != !!(h->clone_flags & CLONE_NEWUSER_BIT))
		return 0;
	n = nb_plan_list_len(base, h->userns);
	if (n < NB_USERNS_LOWERS || !*nb_plan_list_item(base, h->userns, 0) || !*nb_plan_list_item(base, h->userns, 1))
		return 0;
	/* a rootfs needs an upper, a work dir and at least one lower; none needs none */
	if (!*nb_plan_list_item(base, h->userns, 2))
		return n == NB_USERNS_LOWERS && !*nb_plan_list_item(base, h->userns, 3);
	if (!*nb_plan_list_item(base, h->userns, 3) || nb_plan_list_item(base, h->userns, 6)[0] != '/' || n == NB_USERNS_LOWERS)
		return 0;
	for (i = NB_USERNS_LOWERS; i < n; i++)
		if (nb_plan_list_item(base, h->userns, i)[0] != '/')
			return 0;
	return 1;
}

int nb_plan_validate(const void *plan, uint32_t plan_len, int32_t *bad_op)
{
	const char *base = plan;
	const struct nb_plan_header *h = plan;
	const struct nb_op *ops;
	uint32_t i, j;

	*bad_op = -1;
	if (plan == NULL || plan_len < sizeof(*h) || plan_len > NB_PLAN_MAX_BYTES)
		return -EINVAL;
	if (((uintptr_t)plan) % 8)
		return -EINVAL;
	if (h->magic != NB_PLAN_MAGIC || h->abi != NB_ABI_VERSION || h->size != plan_len)
		return -EINVAL;
	/* a monitor's plan with late ops has none; every other plan ends with its exec */
	if ((h->n_ops == 0) != ((h->flags & NB_PLAN_LATE_OPS) != 0) || h->n_ops > NB_PLAN_MAX_OPS ||
	    sizeof(*h) + (uint64_t)h->n_ops * sizeof(struct nb_op) > plan_len)
		return -EINVAL;
	if (!str_ok(base, plan_len, h->log_path) || !str_ok(base, plan_len, h->status_path) ||
	    !str_ok(base, plan_len, h->cgroup_dir) || !str_ok(base, plan_len, h->exec_copy))
		return -EINVAL;
	if (h->exec_copy && base[h->exec_copy] != '/')
		return -EINVAL;
	if (!str_ok(base, plan_len, h->pid_ns) ||
	    (h->pid_ns && (base[h->pid_ns] != '/' || (h->clone_flags & CLONE_NEWPID_BIT) || h->join_pid)))
		return -EINVAL;
	if ((h->on_exit && (!list_ok(base, plan_len, h->on_exit) || nb_plan_list_len(base, h->on_exit) == 0 ||
					   nb_plan_list_item(base, h->on_exit, 0)[0] != '/')))
		return -EINVAL;
	if ((h->flags & NB_PLAN_LOG) && h->log_path == 0)
		return -EINVAL;
	if (h->user_ns && (!list_ok(base, plan_len, h->user_ns) || nb_plan_list_len(base, h->user_ns) != 3 ||
			   nb_plan_list_item(base, h->user_ns, 0)[0] != '/' || (h->clone_flags & CLONE_NEWUSER_BIT) ||
			   h->userns || h->join_pid || (h->flags & NB_PLAN_RESTORE)))
		return -EINVAL;
	if (!str_ok(base, plan_len, h->restore_pidfile) ||
	    ((h->flags & NB_PLAN_RESTORE) != 0) != (h->restore_pidfile != 0) ||
	    (h->restore_pidfile && (base[h->restore_pidfile] != '/' || h->join_pid)))
		return -EINVAL;
	if (h->n_cg_steps > NB_PLAN_MAX_CG_STEPS ||
	    sizeof(*h) + (uint64_t)h->n_ops * sizeof(struct nb_op) +
			    (uint64_t)h->n_cg_steps * sizeof(struct nb_cg_step) > plan_len)
		return -EINVAL;
	if (!userns_ok(base, plan_len))
		return -EINVAL;
	ops = nb_plan_ops(plan);
	for (i = 0; i < h->n_ops; i++) {
		const struct nb_op *op = &ops[i];
		int ok = op->kind >= 1 && op->kind <= NB_OP_KIND_MAX;
		for (j = 0; ok && j < 4; j++)
			ok = str_ok(base, plan_len, op->s[j]);
		ok = ok && list_ok(base, plan_len, op->list) && list_ok(base, plan_len, op->list2);
		/* The userns op waits on the monitor's word: only where it will come */
		if (ok && (op->kind == NB_OP_USERNS || op->kind == NB_OP_MOUNT_FD))
			ok = h->userns != 0 && (op->kind == NB_OP_USERNS || op->s[1] != 0);
		if (ok && op->kind == NB_OP_SECCOMP_PROGRAM)
			ok = op->s[0] != 0;
		/* a hook's program is absolute, with its argv */
		if (ok && op->kind == NB_OP_HOOK)
			ok = op->s[0] != 0 && base[op->s[0]] == '/' && op->list != 0 && nb_plan_list_len(base, op->list) > 0;
		if (ok && (op->op_flags & NB_OPF_AFTER_START))
			ok = op->kind == NB_OP_HOOK;
		if (ok && (op->op_flags & (NB_OPF_NO_PIVOT | NB_OPF_CHROOT)))
			ok = op->kind == NB_OP_PIVOT_ROOT;
		if (ok && (op->op_flags & NB_OPF_KEEP_CAPS))
			ok = op->kind == NB_OP_SETUID;
		/* The exec must be last: nothing runs after a successful execve. */
		if (ok && op->kind == NB_OP_EXEC)
			ok = i == h->n_ops - 1 && op->s[0] != 0 && op->list != 0 &&
			     (!(op->op_flags & NB_OPF_SEALED) || h->exec_copy != 0);
		if (!ok) {
			*bad_op = (int32_t)i;
			return -EINVAL;
		}
	}
	if (h->n_ops && ops[h->n_ops - 1].kind != NB_OP_EXEC) {
		*bad_op = (int32_t)(h->n_ops - 1);
		return -EINVAL;
	}
	for (i = 0; i < h->n_cg_steps; i++) {
		const struct nb_cg_step *st = &nb_plan_cg_steps(plan)[i];
		int needs_s1 = st->kind == NB_CG_ENABLE || st->kind == NB_CG_INHERIT ||
			       st->kind == NB_CG_WRITE || st->kind == NB_CG_OOM_COUNT || st->kind == NB_CG_CHOWN;
		/* cgroup files and directories are absolute host paths */
		if (st->kind < 1 || st->kind > NB_CG_KIND_MAX || st->s0 == 0 ||
		    !str_ok(base, plan_len, st->s0) || base[st->s0] != '/' ||
		    !str_ok(base, plan_len, st->s1) || (needs_s1 && st->s1 == 0) ||
		    (st->flags & ~(NB_CGF_EXCL | NB_CGF_OPTIONAL))) {
			*bad_op = (int32_t)(h->n_ops + i);
			return -EINVAL;
		}
	}
	return 0;
}

const struct nb_cg_step *nb_plan_cg_steps(const void *plan)
{
	const struct nb_plan_header *h = plan;

	return (const struct nb_cg_step *)((const char *)nb_plan_ops(plan) + h->n_ops * sizeof(struct nb_op));
}

const struct nb_op *nb_plan_ops(const void *plan)
{
	return (const struct nb_op *)((const char *)plan + sizeof(struct nb_plan_header));
}

const char *nb_plan_str(const void *plan, uint32_t off)
{
	return off ? (const char *)plan + off : NULL;
}

uint32_t nb_plan_list_len(const void *plan, uint32_t off)
{
	uint32_t n = 0;

	if (off)
		memcpy(&n, (const char *)plan + off, 4);
	return n;
}

const char *nb_plan_list_item(const void *plan, uint32_t off, uint32_t i)
{
	uint32_t s;

	memcpy(&s, (const char *)plan + off + 4 + 4 * i, 4);
	return (const char *)plan + s;
}

uint32_t nb_abi_version(void)
{
	return NB_ABI_VERSION;
}
