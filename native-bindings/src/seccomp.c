/*
 * The default seccomp filter (seccomp(2), classic BPF), in the spirit of Docker's and
 * Podman's default profiles but as a short denylist: system calls that reach kernel
 * state no container should touch, or that open a large attack surface, fail with
 * EPERM; everything else is allowed. Loaded by NB_OP_SECCOMP: with no_new_privs (a
 * container whose root is the host's) just before execve, which keeps the filter off our
 * own ops; without it (a container in its own user namespace) before setuid, while the
 * init still holds CAP_SYS_ADMIN in its namespace, which a load without no_new_privs
 * requires (runtime/plan planCredentials).
 *
 * - user namespaces (clone/clone3/unshare with CLONE_NEWUSER): a fresh user namespace
 *   hands out every capability over new namespaces of its own, the door to most
 *   container escapes of recent years. clone3 passes its flags in a struct BPF cannot
 *   read, so clone3 as a whole fails with ENOSYS, which makes libc fall back to clone.
 * - the kernel keyring (keyctl, add_key, request_key): not namespaced;
 * - kexec_load, kexec_file_load, reboot, swapon, swapoff, init/finit/delete_module,
 *   acct, settimeofday, clock_settime, adjtimex, clock_adjtime, stime, syslog, quotactl,
 *   lookup_dcookie, perf_event_open, bpf, userfaultfd, open_by_handle_at, name_to_handle_at,
 *   mount/umount2/pivot_root/move_mount/open_tree/fsopen/fsconfig/fsmount/fspick.
 * Most of these also need a capability the container lacks; the filter is the second wall.
 * ptrace stays allowed (as in Docker's profile on kernels >= 4.8): strace and gdb work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#if defined(__x86_64__)
#define NB_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "novabox's seccomp filter knows x86_64 and aarch64"
#endif

/* What the filter does with one system call number. */
enum { ACT_EPERM, ACT_ENOSYS, ACT_NO_USERNS };

/*
 * In a system container (a server whose pid 1 is the image's systemd, always in a user
 * namespace of its own) the mount family is allowed: systemd mounts its API file systems
 * and its units' sandboxes (PrivateTmp=, ProtectSystem=), which the kernel confines to
 * mounts the namespace's root may make; name_to_handle_at (systemd reads cgroup ids with
 * it; its dangerous twin open_by_handle_at stays denied, as in LXC's profile) and
 * reboot(2) are allowed too (in a pid namespace it
 * only ends that namespace's init, which is how systemd-shutdown ends a container); the
 * keyring calls fail with ENOSYS, as LXC's default profile does, so systemd takes its
 * fallback without a warning. Everything else of the list stays denied.
 */
#define SYS_ALLOW 1 /* allowed in a system container */
#define SYS_NOSYS 2 /* ENOSYS in a system container */

static const struct {
	uint32_t nr;
	int act;
	int sys; /* SYS_ALLOW, SYS_NOSYS or 0: the same in a system container */
} deny[] = {
	/* unshare(flags) and clone(flags, ...): the low word of arg 0 holds the flags. */
	{ __NR_unshare, ACT_NO_USERNS, 0 }, { __NR_clone, ACT_NO_USERNS, 0 },
	{ __NR_clone3, ACT_ENOSYS, 0 },
	{ __NR_keyctl, ACT_EPERM, SYS_NOSYS }, { __NR_add_key, ACT_EPERM, SYS_NOSYS },
	{ __NR_request_key, ACT_EPERM, SYS_NOSYS },
	{ __NR_kexec_load, ACT_EPERM, 0 }, { __NR_kexec_file_load, ACT_EPERM, 0 }, { __NR_reboot, ACT_EPERM, SYS_ALLOW },
	{ __NR_swapon, ACT_EPERM, 0 }, { __NR_swapoff, ACT_EPERM, 0 },
	{ __NR_init_module, ACT_EPERM, 0 }, { __NR_finit_module, ACT_EPERM, 0 }, { __NR_delete_module, ACT_EPERM, 0 },
	{ __NR_acct, ACT_EPERM, 0 }, { __NR_settimeofday, ACT_EPERM, 0 }, { __NR_clock_settime, ACT_EPERM, 0 },
	{ __NR_adjtimex, ACT_EPERM, 0 }, { __NR_clock_adjtime, ACT_EPERM, 0 }, { __NR_syslog, ACT_EPERM, 0 },
	{ __NR_quotactl, ACT_EPERM, 0 },
#ifdef __NR_lookup_dcookie
	{ __NR_lookup_dcookie, ACT_EPERM, 0 },
#endif
	{ __NR_perf_event_open, ACT_EPERM, 0 }, { __NR_bpf, ACT_EPERM, 0 }, { __NR_userfaultfd, ACT_EPERM, 0 },
	{ __NR_open_by_handle_at, ACT_EPERM, 0 }, { __NR_name_to_handle_at, ACT_EPERM, SYS_ALLOW },
	{ __NR_mount, ACT_EPERM, SYS_ALLOW }, { __NR_umount2, ACT_EPERM, SYS_ALLOW },
	{ __NR_pivot_root, ACT_EPERM, SYS_ALLOW }, { __NR_move_mount, ACT_EPERM, SYS_ALLOW },
	{ __NR_open_tree, ACT_EPERM, SYS_ALLOW }, { __NR_fsopen, ACT_EPERM, SYS_ALLOW },
	{ __NR_fsconfig, ACT_EPERM, SYS_ALLOW }, { __NR_fsmount, ACT_EPERM, SYS_ALLOW },
	{ __NR_fspick, ACT_EPERM, SYS_ALLOW },
};
#define N_DENY (sizeof(deny) / sizeof(deny[0]))

struct prog {
	struct sock_filter *f;
	size_t n, max;
};

static int put(struct prog *p, struct sock_filter insn)
{
	if (p->n >= p->max)
		return -1;
	p->f[p->n++] = insn;
	return 0;
}

/* BPF_STMT and BPF_JUMP are initializers: as values, compound literals. */
#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))
#define RET_ERRNO(e) STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (e))
#define ALLOW STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

/* The instructions of one entry's action, entered with the syscall number loaded. */
static int action(struct prog *p, int act)
{
	if (act == ACT_EPERM)
		return put(p, RET_ERRNO(EPERM));
	if (act == ACT_ENOSYS)
		return put(p, RET_ERRNO(ENOSYS));
	return put(p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]))) |
	       put(p, JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1)) |
	       put(p, RET_ERRNO(EPERM)) | put(p, ALLOW);
}

static size_t action_len(int act)
{
	return act == ACT_NO_USERNS ? 4 : 1;
}

/*
 * A binary search over sorted[lo, hi): "nr >= pivot" splits the range until a few entries
 * are left, which are compared one by one; no match: allow. So a call is decided in about
 * log2(N) + 3 comparisons instead of up to N. That matters at load time too: the kernel
 * runs the filter once per system call number to find those it can allow without running
 * it at all (seccomp's action cache, Linux 5.11), ~900 runs per load.
 * Returns the length emitted (count only when p->f is NULL).
 */
static int act_of(size_t k, int system)
{
	if (system && deny[k].sys == SYS_NOSYS)
		return ACT_ENOSYS;
	return deny[k].act;
}

static int tree(struct prog *p, const size_t *sorted, size_t lo, size_t hi, int system)
{
	size_t i;

	if (hi - lo <= 3) {
		for (i = lo; i < hi; i++) {
			int act = act_of(sorted[i], system);
			if (put(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, deny[sorted[i]].nr, 0,
					    (unsigned char)action_len(act))) || action(p, act))
				return -1;
		}
		return put(p, ALLOW);
	} else {
		size_t mid = lo + (hi - lo) / 2, jge = p->n, left;

		if (put(p, JUMP(BPF_JMP | BPF_JGE | BPF_K, deny[sorted[mid]].nr, 0, 0)) ||
		    tree(p, sorted, lo, mid, system))
			return -1;
		left = p->n - jge - 1;
		if (left > 255)
			return -1;
		p->f[jge].jt = (unsigned char)left; /* nr >= pivot: skip the left half */
		if (tree(p, sorted, mid, hi, system))
			return -1;
	}
	return 0;
}

int nb_seccomp_program(struct sock_filter *out, size_t max, int system)
{
	struct prog p = { .f = out, .n = 0, .max = max };
	size_t sorted[N_DENY], i, j, n = 0;

	for (i = 0; i < N_DENY; i++)
		if (!(system && deny[i].sys == SYS_ALLOW))
			sorted[n++] = i;
	for (i = 1; i < n; i++) /* insertion sort by number: 36 entries */
		for (j = i; j > 0 && deny[sorted[j - 1]].nr > deny[sorted[j]].nr; j--) {
			size_t t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	if (/* Another architecture's system call numbers mean something else: kill. */
	    put(&p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))) ||
	    put(&p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, NB_AUDIT_ARCH, 1, 0)) ||
	    put(&p, STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)) ||
	    put(&p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))))
		return -1;
#if defined(__x86_64__)
	/* x32 ABI numbers carry this bit: refuse them rather than reason about them. */
	if (put(&p, JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1)) || put(&p, RET_ERRNO(EPERM)))
		return -1;
#endif
	if (tree(&p, sorted, 0, n, system))
		return -1;
	return (int)p.n;
}

int nb_load_seccomp(int system)
{
	struct sock_filter filter[256];
	struct sock_fprog prog;
	int n = nb_seccomp_program(filter, sizeof(filter) / sizeof(filter[0]), system);

	if (n < 0) {
		errno = E2BIG;
		return -1;
	}
	prog.len = (unsigned short)n;
	prog.filter = filter;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * An OCI profile's filter, compiled by runtime/oci/seccomp.ts: decoded from hex (the
 * plan's strings are NUL-terminated) into a buffer of at most BPF_MAXINSNS instructions
 * and loaded as it is; the kernel verifies it.
 */
int nb_load_seccomp_program(const char *hex, unsigned int flags)
{
	static struct sock_filter filter[BPF_MAXINSNS];
	unsigned char *b = (unsigned char *)filter;
	struct sock_fprog prog;
	size_t len = strlen(hex), i;

	if (len == 0 || len % 16 || len / 16 > BPF_MAXINSNS) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < len / 2; i++) {
		int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
		if (h < 0 || l < 0) {
			errno = EINVAL;
			return -1;
		}
		b[i] = (unsigned char)(h << 4 | l); /* sock_filter is little-endian u16, u8, u8, u32 here */
	}
	prog.len = (unsigned short)(len / 16);
	prog.filter = filter;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}
