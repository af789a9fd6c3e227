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
#include <stdlib.h>
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

#define MAX_EXTRA 64 /* rules beyond the fixed list (novabox-oci's linux.devices) */

/*
 * One rule of `extra` ("c 10:200 rwm", "b 7:* r", a '*' for any major or minor, access
 * letters from r, w, m): its instructions at *n, each jump to the next rule. 0 or -EINVAL.
 */
static int add_rule(const char *rule, struct bpf_insn *prog, size_t *n)
{
	long major = -1, minor = -1;
	const char *p = rule;
	int type, access = 0, k = 0;
	struct bpf_insn r[6];
	char *end;

	if (*p == 'c')
		type = BPF_DEVCG_DEV_CHAR;
	else if (*p == 'b')
		type = BPF_DEVCG_DEV_BLOCK;
	else
		return -EINVAL;
	if (*++p != ' ')
		return -EINVAL;
	p++;
	if (*p == '*')
		p++;
	else if ((major = strtol(p, &end, 10)) < 0 || end == p || major > 0xfffff || (p = end, 0))
		return -EINVAL;
	if (*p++ != ':')
		return -EINVAL;
	if (*p == '*')
		p++;
	else if ((minor = strtol(p, &end, 10)) < 0 || end == p || minor > 0xfffff || (p = end, 0))
		return -EINVAL;
	if (*p == ' ')
		for (p++; *p && *p != '\n' && *p != ','; p++) {
			if (*p == 'm')
				access |= BPF_DEVCG_ACC_MKNOD;
			else if (*p == 'r')
				access |= BPF_DEVCG_ACC_READ;
			else if (*p == 'w')
				access |= BPF_DEVCG_ACC_WRITE;
			else
				return -EINVAL;
		}
	else if (*p && *p != '\n' && *p != ',')
		return -EINVAL;
	if (!access)
		access = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
	/* the jumps' offsets are filled in below: each skips the rest of this rule */
	r[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0, type);
	if (major >= 0)
		r[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_3, 0, 0, (int32_t)major);
	if (minor >= 0)
		r[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int32_t)minor);
	/* r5 = the access asked for, less what the rule allows: anything left, not this rule */
	r[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_5, 0, 0);
	r[k++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_6, 0, 0, ~access & 7);
	r[k++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_6, 0, 0, 0);
	for (int i = 0; i < k; i++) {
		if (BPF_CLASS(r[i].code) == BPF_JMP)
			r[i].off = (int16_t)(k - 1 - i + 2); /* past this rule's RET(1) */
		prog[(*n)++] = r[i];
	}
	prog[(*n)++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
	prog[(*n)++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return 0;
}

/*
 * The allow-list above, plus `extra`: rules separated by newlines or commas, as v1's
 * devices.allow lines ("b 8:0 rwm"); NULL or "" for none. -EINVAL for a malformed rule.
 */
int nb_cgroup_devices_allow(const char *cgroup_dir, const char *extra)
{
	static const struct bpf_insn head[] = {
		LDX_W(BPF_REG_2, access_type),
		INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff), /* low half: the type */
		LDX_W(BPF_REG_5, access_type),
		INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_5, 0, 0, 16), /* high half: the access */
		LDX_W(BPF_REG_3, major),
		LDX_W(BPF_REG_4, minor),
		CHAR_DEV(1, 3), CHAR_DEV(1, 5), CHAR_DEV(1, 7), CHAR_DEV(1, 8), CHAR_DEV(1, 9),
		CHAR_DEV(5, 0), CHAR_DEV(5, 1), CHAR_DEV(5, 2),
		CHAR_MAJOR(136),
	};
	struct bpf_insn prog[sizeof(head) / sizeof(head[0]) + MAX_EXTRA * 8 + 2];
	size_t n = sizeof(head) / sizeof(head[0]);
	union bpf_attr attr;
	int cg, fd, rc, rules = 0;

	memcpy(prog, head, sizeof(head));
	for (const char *p = extra; p && *p; p++) {
		if (p == extra || p[-1] == '\n' || p[-1] == ',') {
			if (*p == '\n' || *p == ',')
				continue;
			if (++rules > MAX_EXTRA || add_rule(p, prog, &n) < 0)
				return -EINVAL;
		}
	}
	prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	prog[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (unsigned long)prog;
	attr.insn_cnt = (unsigned)n;
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
