/*
 * The cgroup v2 device allow-list: v2 has no devices.allow file; access to device nodes
 * is decided by an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the
 * cgroup (Documentation/admin-guide/cgroup-v2.rst, "Device controller"), as runc and
 * crun attach one. The list is the one v1 gets (src/runtime/cgroups/v1.ts):
 * c 1:3 null, 1:5 zero, 1:7 full, 1:8 random, 1:9 urandom, 5:0 tty, 5:1 console,
 * 5:2 ptmx, 136:* pts; all with read, write and mknod. Anything else: denied.
 * Run before the init runs: by the monitor as a cgroup step (cgroup.c), or by the
 * drivers' create() in the CLI.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "novabox.h"

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
/* r2 = type, r3 = major, r4 = minor; each rule: if type/major(/minor) match, return 1 */
#define LDX_W(dst, field) INSN(BPF_LDX | BPF_W | BPF_MEM, dst, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, field), 0)
#define JNE(reg, val, skip) INSN(BPF_JMP | BPF_JNE | BPF_K, reg, 0, skip, val)
#define RET(v) INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, v), INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* each jump skips to the instruction after the rule's RET */
#define CHAR_DEV(maj, min) JNE(BPF_REG_2, BPF_DEVCG_DEV_CHAR, 4), JNE(BPF_REG_3, maj, 3), JNE(BPF_REG_4, min, 2), RET(1)
#define CHAR_MAJOR(maj) JNE(BPF_REG_2, BPF_DEVCG_DEV_CHAR, 3), JNE(BPF_REG_3, maj, 2), RET(1)

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int nb_cgroup_devices(const char *cgroup_dir)
{
	struct bpf_insn prog[] = {
		LDX_W(BPF_REG_2, access_type),
		INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff), /* low half: the type */
		LDX_W(BPF_REG_3, major),
		LDX_W(BPF_REG_4, minor),
		CHAR_DEV(1, 3), CHAR_DEV(1, 5), CHAR_DEV(1, 7), CHAR_DEV(1, 8), CHAR_DEV(1, 9),
		CHAR_DEV(5, 0), CHAR_DEV(5, 1), CHAR_DEV(5, 2),
		CHAR_MAJOR(136),
		RET(0),
	};
	union bpf_attr attr;
	int cg, fd, rc;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (unsigned long)prog;
	attr.insn_cnt = sizeof(prog) / sizeof(prog[0]);
	attr.license = (unsigned long)"GPL";
	fd = (int)bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0)
		return -errno;
	cg = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (unsigned)cg;
	attr.attach_bpf_fd = (unsigned)fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	/* The cgroup keeps the program attached after we close our fds. */
	rc = bpf(BPF_PROG_ATTACH, &attr) < 0 ? -errno : 0;
	close(cg);
	close(fd);
	return rc;
}
