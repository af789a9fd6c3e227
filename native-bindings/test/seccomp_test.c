/*
 * The default seccomp filter, run here by a small classic-BPF interpreter for every
 * system call number: the table below (written out independently of seccomp.c) is what
 * each number must get. No privilege needed: nothing is loaded into the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "internal.h"

static int passed, failed;

#define CHECK(name, cond) do { \
	if (cond) { passed++; } else { failed++; fprintf(stderr, "FAIL %s (%s:%d)\n", name, __FILE__, __LINE__); } \
} while (0)

static const struct {
	int nr;
	unsigned int ret; /* with arg 0 = 0 */
	unsigned int ret_newuser; /* with arg 0 = CLONE_NEWUSER */
	int sys; /* in a system container: 1 allowed, 2 ENOSYS, 0 the same */
} expected[] = {
#define EPERM_ (SECCOMP_RET_ERRNO | EPERM)
	{ __NR_unshare, SECCOMP_RET_ALLOW, EPERM_, 0 }, { __NR_clone, SECCOMP_RET_ALLOW, EPERM_, 0 },
	{ __NR_clone3, SECCOMP_RET_ERRNO | ENOSYS, SECCOMP_RET_ERRNO | ENOSYS },
	{ __NR_keyctl, EPERM_, EPERM_, 2 }, { __NR_add_key, EPERM_, EPERM_, 2 }, { __NR_request_key, EPERM_, EPERM_, 2 },
	{ __NR_kexec_load, EPERM_, EPERM_, 0 }, { __NR_kexec_file_load, EPERM_, EPERM_, 0 }, { __NR_reboot, EPERM_, EPERM_, 1 },
	{ __NR_swapon, EPERM_, EPERM_, 0 }, { __NR_swapoff, EPERM_, EPERM_, 0 }, { __NR_init_module, EPERM_, EPERM_, 0 },
	{ __NR_finit_module, EPERM_, EPERM_, 0 }, { __NR_delete_module, EPERM_, EPERM_, 0 }, { __NR_acct, EPERM_, EPERM_, 0 },
	{ __NR_settimeofday, EPERM_, EPERM_, 0 }, { __NR_clock_settime, EPERM_, EPERM_, 0 }, { __NR_adjtimex, EPERM_, EPERM_, 0 },
	{ __NR_clock_adjtime, EPERM_, EPERM_, 0 }, { __NR_syslog, EPERM_, EPERM_, 0 }, { __NR_quotactl, EPERM_, EPERM_, 0 },
#ifdef __NR_lookup_dcookie
	{ __NR_lookup_dcookie, EPERM_, EPERM_, 0 },
#endif
	{ __NR_perf_event_open, EPERM_, EPERM_, 0 }, { __NR_bpf, EPERM_, EPERM_, 0 }, { __NR_userfaultfd, EPERM_, EPERM_, 0 },
	{ __NR_open_by_handle_at, EPERM_, EPERM_, 0 }, { __NR_name_to_handle_at, EPERM_, EPERM_, 1 },
	{ __NR_mount, EPERM_, EPERM_, 1 }, { __NR_umount2, EPERM_, EPERM_, 1 }, { __NR_pivot_root, EPERM_, EPERM_, 1 },
	{ __NR_move_mount, EPERM_, EPERM_, 1 }, { __NR_open_tree, EPERM_, EPERM_, 1 }, { __NR_fsopen, EPERM_, EPERM_, 1 },
	{ __NR_fsconfig, EPERM_, EPERM_, 1 }, { __NR_fsmount, EPERM_, EPERM_, 1 }, { __NR_fspick, EPERM_, EPERM_, 1 },
};

/* Classic BPF as seccomp runs it, for the instructions a filter may use here. */
static unsigned int run(const struct sock_filter *f, int n, const struct seccomp_data *d, int *steps)
{
	unsigned int a = 0;
	int pc = 0;

	*steps = 0;
	while (pc >= 0 && pc < n) {
		const struct sock_filter *i = &f[pc++];
		(*steps)++;
		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (i->k > sizeof(*d) - 4)
				return 0xdead;
			memcpy(&a, (const char *)d + i->k, 4);
			break;
		case BPF_JMP | BPF_JEQ | BPF_K: pc += a == i->k ? i->jt : i->jf; break;
		case BPF_JMP | BPF_JGE | BPF_K: pc += a >= i->k ? i->jt : i->jf; break;
		case BPF_JMP | BPF_JSET | BPF_K: pc += (a & i->k) ? i->jt : i->jf; break;
		case BPF_RET | BPF_K: return i->k;
		default: return 0xbad;
		}
	}
	return 0xfa11; /* fell off the end: the kernel's checker refuses such a program */
}

/* Every number against the table, with the filter of a plain (system = 0) or a system container. */
static void check_all(int system)
{
	struct sock_filter f[256], small[8];
	struct seccomp_data d;
	int n = nb_seccomp_program(f, 256, system), nr, k, steps, most = 0, bad_allowed = 0;
	char name[80];
	const char *kind = system ? "system" : "default";

	CHECK("program fits", n > 0 && n <= 256);
	CHECK("too small a buffer is refused", nb_seccomp_program(small, 8, system) == -1);
	memset(&d, 0, sizeof(d));
	d.arch = AUDIT_ARCH_X86_64;
	/* Every number, each with arg 0 plain and with CLONE_NEWUSER: one check per table
	 * entry (the denied ones) and one for all the others; each mismatch is printed. */
	for (nr = 0; nr < 1024; nr++) {
		unsigned int want = SECCOMP_RET_ALLOW, want_nu = SECCOMP_RET_ALLOW, got, got_nu;
		int listed = 0;
		for (k = 0; k < (int)(sizeof(expected) / sizeof(expected[0])); k++)
			if (expected[k].nr == nr) {
				want = expected[k].ret;
				want_nu = expected[k].ret_newuser;
				if (system && expected[k].sys == 1)
					want = want_nu = SECCOMP_RET_ALLOW;
				if (system && expected[k].sys == 2)
					want = want_nu = SECCOMP_RET_ERRNO | ENOSYS;
				listed = 1;
			}
		d.nr = nr;
		d.args[0] = 0;
		got = run(f, n, &d, &steps);
		if (steps > most)
			most = steps;
		d.args[0] = CLONE_NEWUSER | CLONE_NEWNS;
		got_nu = run(f, n, &d, &steps);
		if (got != want || got_nu != want_nu) {
			fprintf(stderr, "%s nr %d: got %#x/%#x, want %#x/%#x\n", kind, nr, got, got_nu, want, want_nu);
			bad_allowed += !listed;
		}
		if (listed) {
			snprintf(name, sizeof(name), "%s: denied nr %d", kind, nr);
			CHECK(name, got == want && got_nu == want_nu);
		}
	}
	CHECK("every other number up to 1023 is allowed", bad_allowed == 0);
	d.nr = 0x40000000 | __NR_read; /* x32 */
	d.args[0] = 0;
	CHECK("x32 numbers are refused", run(f, n, &d, &steps) == (SECCOMP_RET_ERRNO | EPERM));
	d.nr = __NR_read;
	d.arch = AUDIT_ARCH_I386;
	CHECK("another architecture is killed", run(f, n, &d, &steps) == SECCOMP_RET_KILL_PROCESS);
	/* A search, not a list: no call walks more than a handful of instructions. */
	CHECK("at most 16 instructions per call", most <= 16);
	printf("seccomp (%s): %d instructions, at most %d run per call\n", kind, n, most);
}

int main(void)
{
	check_all(0);
	check_all(1);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
