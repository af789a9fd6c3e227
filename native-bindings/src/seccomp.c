/*
 * The default seccomp filter (seccomp(2), classic BPF), in the spirit of Docker's and
 * Podman's default profiles but as a short denylist: system calls that reach kernel
 * state no container should touch, or that open a large attack surface, fail with
 * EPERM; everything else is allowed. Loaded by NB_OP_SECCOMP just before execve (after
 * no_new_privs, which an unprivileged seccomp load requires; we are still root then, but
 * the order also keeps the filter off our own ops).
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

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LOAD_ARG_LO(n) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[n]))
#define DENY_NR(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int nb_load_seccomp(void)
{
	struct sock_filter filter[] = {
		/* Another architecture's system call numbers mean something else: kill. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NB_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		LOAD_NR,
#if defined(__x86_64__)
		/* x32 ABI numbers carry this bit: refuse them rather than reason about them. */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
#endif
		/* unshare(flags) and clone(flags, ...): the low word of arg 0 holds the flags. */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4),
		LOAD_ARG_LO(0),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		ALLOW,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		DENY_NR(__NR_keyctl),
		DENY_NR(__NR_add_key),
		DENY_NR(__NR_request_key),
		DENY_NR(__NR_kexec_load),
		DENY_NR(__NR_kexec_file_load),
		DENY_NR(__NR_reboot),
		DENY_NR(__NR_swapon),
		DENY_NR(__NR_swapoff),
		DENY_NR(__NR_init_module),
		DENY_NR(__NR_finit_module),
		DENY_NR(__NR_delete_module),
		DENY_NR(__NR_acct),
		DENY_NR(__NR_settimeofday),
		DENY_NR(__NR_clock_settime),
		DENY_NR(__NR_adjtimex),
		DENY_NR(__NR_clock_adjtime),
		DENY_NR(__NR_syslog),
		DENY_NR(__NR_quotactl),
		DENY_NR(__NR_lookup_dcookie),
		DENY_NR(__NR_perf_event_open),
		DENY_NR(__NR_bpf),
		DENY_NR(__NR_userfaultfd),
		DENY_NR(__NR_open_by_handle_at),
		DENY_NR(__NR_name_to_handle_at),
		DENY_NR(__NR_mount),
		DENY_NR(__NR_umount2),
		DENY_NR(__NR_pivot_root),
		DENY_NR(__NR_move_mount),
		DENY_NR(__NR_open_tree),
		DENY_NR(__NR_fsopen),
		DENY_NR(__NR_fsconfig),
		DENY_NR(__NR_fsmount),
		DENY_NR(__NR_fspick),
		ALLOW,
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
		.filter = filter,
	};

	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}
