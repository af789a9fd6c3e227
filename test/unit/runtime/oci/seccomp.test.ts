/**
 * linux.seccomp compiled to classic BPF (runtime/oci/seccomp.ts), run by the module's own
 * interpreter call by call: the kernel's answer for each syscall number, architecture and
 * argument, with no privilege (nothing is loaded). Docker 20.10's default profile is the
 * one dockerd wrote into a bundle's config.json on this host (test/fixtures).
 */
import { describe, expect, it } from 'vitest';
import { AUDIT_ARCH, compileSeccomp, MAX_INSNS, runSeccomp, SECCOMP_RET } from '../../../../src/runtime/oci/seccomp.js';
import { syscallsI386, syscallsX86_64 } from '../../../../src/runtime/oci/syscalls.js';
import { dockerProfile, podmanProfile } from '../../../helpers/seccomp-profiles.js';

const NR = syscallsX86_64();
const NR32 = syscallsI386();
const ERRNO = (e: number) => SECCOMP_RET.ERRNO | e;
const docker = dockerProfile();

function ret(profile: unknown, name: string, args: (number | bigint)[] = [], arch = AUDIT_ARCH.X86_64): number {
  const table = arch === AUDIT_ARCH.I386 ? NR32 : NR;
  const nr = table.get(name);
  if (nr === undefined) throw new Error(`no syscall ${name}`);
  return runSeccomp(compileSeccomp(profile, 'x64').program, { nr, arch, args }).ret;
}

function refusal(profile: unknown): string {
  try {
    compileSeccomp(profile, 'x64');
  } catch (e) {
    return (e as Error).message;
  }
  return 'compiled';
}

describe('seccomp profiles compiled to BPF', () => {
  it('the tables know the x86_64 and i386 numbers', () => {
    expect(NR.get('read')).toBe(0);
    expect(NR.get('mkdir')).toBe(83);
    expect(NR.get('clone3')).toBe(435);
    expect(NR32.get('mkdir')).toBe(39);
    expect(NR32.get('socketcall')).toBe(102);
  });

  it('Docker 20.10 default: allowed calls allowed, the rest EPERM, clone by its flags, personality by its argument', () => {
    const f = compileSeccomp(docker, 'x64');
    expect(f.length).toBeLessThanOrEqual(MAX_INSNS);
    // runs of numbers sharing an action: a few hundred instructions for both architectures
    expect(f.length).toBeLessThan(1000);
    expect(f.flags).toBe(0);
    for (const name of ['read', 'write', 'openat', 'execve', 'mmap', 'futex', 'exit_group', 'setresuid', 'capset', 'chdir']) {
      expect(ret(docker, name), name).toBe(SECCOMP_RET.ALLOW);
    }
    for (const name of ['mount', 'umount2', 'unshare', 'keyctl', 'add_key', 'bpf', 'kexec_load', 'reboot', 'swapon', 'init_module']) {
      expect(ret(docker, name), name).toBe(ERRNO(1));
    }
    // clone3 is ENOSYS (so libc falls back to clone), as the profile's errnoRet 38 says
    expect(ret(docker, 'clone3')).toBe(ERRNO(38));
    // clone without namespace flags: allowed; with CLONE_NEWUSER (0x10000000): the default
    expect(ret(docker, 'clone', [0x11])).toBe(SECCOMP_RET.ALLOW);
    expect(ret(docker, 'clone', [0x10000011])).toBe(ERRNO(1));
    expect(ret(docker, 'clone', [0x20000])).toBe(ERRNO(1)); // CLONE_NEWNS
    for (const v of [0, 8, 0x20000, 0x20008, 0xffffffff]) expect(ret(docker, 'personality', [v]), String(v)).toBe(SECCOMP_RET.ALLOW);
    expect(ret(docker, 'personality', [1])).toBe(ERRNO(1));
    // the 32-bit ABI gets the same rules by its own numbers; x32 and other architectures are killed
    expect(ret(docker, 'mkdir', [], AUDIT_ARCH.I386)).toBe(SECCOMP_RET.ALLOW);
    expect(ret(docker, 'mount', [], AUDIT_ARCH.I386)).toBe(ERRNO(1));
    expect(runSeccomp(f.program, { nr: 0x40000000 + 83 }).ret).toBe(SECCOMP_RET.KILL_PROCESS);
    expect(runSeccomp(f.program, { nr: 0, arch: 0xc00000b7 /* aarch64 */ }).ret).toBe(SECCOMP_RET.KILL_PROCESS);
  });

  it("Podman 4.3 default: ENOSYS for the unknown, EPERM for a capability's calls, the audit socket EINVAL", () => {
    const podman = podmanProfile();
    const f = compileSeccomp(podman, 'x64');
    expect(f.length).toBeLessThan(1000);
    for (const name of ['read', 'openat', 'execve', 'clone', 'clone3', 'chroot', 'setresuid'])
      expect(ret(podman, name), name).toBe(SECCOMP_RET.ALLOW);
    for (const name of ['bpf', 'init_module', 'acct', 'settimeofday']) expect(ret(podman, name), name).toBe(ERRNO(1));
    for (const name of ['add_key', 'io_uring_setup', 'create_module']) expect(ret(podman, name), name).toBe(ERRNO(38));
    // socket(AF_NETLINK, *, NETLINK_AUDIT) without CAP_AUDIT_WRITE: EINVAL; any other socket: allowed
    expect(ret(podman, 'socket', [16, 3, 9])).toBe(ERRNO(22));
    expect(ret(podman, 'socket', [16, 3, 0])).toBe(SECCOMP_RET.ALLOW);
    expect(ret(podman, 'socket', [2, 1, 9])).toBe(SECCOMP_RET.ALLOW);
    expect(ret(podman, 'personality', [8])).toBe(SECCOMP_RET.ALLOW);
    expect(ret(podman, 'personality', [1])).toBe(ERRNO(38));
  });

  it('a call is decided in a few dozen instructions (a binary search, not a list)', () => {
    const f = compileSeccomp(docker, 'x64');
    let worst = 0;
    for (const nr of new Set(NR.values())) worst = Math.max(worst, runSeccomp(f.program, { nr }).steps);
    expect(worst).toBeLessThan(40);
  });

  it('every action, with its errno', () => {
    const p = (action: string, extra: object = {}) => ({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir'], action, ...extra }],
    });
    expect(ret(p('SCMP_ACT_ERRNO', { errnoRet: 122 }), 'mkdir')).toBe(ERRNO(122));
    expect(ret(p('SCMP_ACT_ERRNO'), 'mkdir')).toBe(ERRNO(1));
    expect(ret(p('SCMP_ACT_KILL'), 'mkdir')).toBe(SECCOMP_RET.KILL_THREAD);
    expect(ret(p('SCMP_ACT_KILL_THREAD'), 'mkdir')).toBe(SECCOMP_RET.KILL_THREAD);
    expect(ret(p('SCMP_ACT_KILL_PROCESS'), 'mkdir')).toBe(SECCOMP_RET.KILL_PROCESS);
    expect(ret(p('SCMP_ACT_TRAP'), 'mkdir')).toBe(SECCOMP_RET.TRAP);
    expect(ret(p('SCMP_ACT_TRACE', { errnoRet: 5 }), 'mkdir')).toBe(SECCOMP_RET.TRACE | 5);
    expect(ret(p('SCMP_ACT_LOG'), 'mkdir')).toBe(SECCOMP_RET.LOG);
    expect(ret(p('SCMP_ACT_LOG'), 'rmdir')).toBe(SECCOMP_RET.ALLOW);
    expect(ret({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38 }, 'getpid')).toBe(ERRNO(38));
  });

  it('64-bit comparisons of every operator, across the word boundary', () => {
    const big = 0x1_0000_0005n;
    const rule = (op: string, value: bigint | number, valueTwo?: number) => ({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['lseek'], action: 'SCMP_ACT_ERRNO', errnoRet: 7, args: [{ index: 1, op, value: Number(value), valueTwo }] }],
    });
    const denied = (profile: unknown, arg: bigint) => ret(profile, 'lseek', [0, arg]) === ERRNO(7);
    const cases: [string, (a: bigint) => boolean][] = [
      ['SCMP_CMP_EQ', (a) => a === big],
      ['SCMP_CMP_NE', (a) => a !== big],
      ['SCMP_CMP_LT', (a) => a < big],
      ['SCMP_CMP_LE', (a) => a <= big],
      ['SCMP_CMP_GT', (a) => a > big],
      ['SCMP_CMP_GE', (a) => a >= big],
    ];
    const probes = [0n, 5n, 6n, big - 1n, big, big + 1n, 0x2_0000_0000n, 0x1_ffff_ffffn, 0xffff_ffffn];
    for (const [op, holds] of cases) {
      for (const a of probes) expect(denied(rule(op, big), a), `${op} ${a}`).toBe(holds(a));
    }
    // (arg & value) == valueTwo
    const masked = rule('SCMP_CMP_MASKED_EQ', 0x1_0000_00f0n, 0x20);
    expect(denied(masked, 0x2fn)).toBe(true);
    expect(denied(masked, 0x1_0000_0020n)).toBe(false);
    expect(denied(masked, 0x10n)).toBe(false);
  });

  it('conditions of one rule are all needed; on the same argument, any one (as runc splits them)', () => {
    const and = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        {
          names: ['kill'],
          action: 'SCMP_ACT_ERRNO',
          args: [
            { index: 0, op: 'SCMP_CMP_EQ', value: 1 },
            { index: 1, op: 'SCMP_CMP_EQ', value: 9 },
          ],
        },
      ],
    };
    expect(ret(and, 'kill', [1, 9])).toBe(ERRNO(1));
    expect(ret(and, 'kill', [1, 15])).toBe(SECCOMP_RET.ALLOW);
    expect(ret(and, 'kill', [2, 9])).toBe(SECCOMP_RET.ALLOW);
    const or = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        {
          names: ['kill'],
          action: 'SCMP_ACT_ERRNO',
          args: [
            { index: 1, op: 'SCMP_CMP_EQ', value: 9 },
            { index: 1, op: 'SCMP_CMP_EQ', value: 15 },
          ],
        },
      ],
    };
    expect(ret(or, 'kill', [1, 9])).toBe(ERRNO(1));
    expect(ret(or, 'kill', [1, 15])).toBe(ERRNO(1));
    expect(ret(or, 'kill', [1, 2])).toBe(SECCOMP_RET.ALLOW);
    // a conditional rule is tried before the syscall's rule without conditions
    const both = {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['kill'], action: 'SCMP_ACT_ALLOW' },
        { names: ['kill'], action: 'SCMP_ACT_ERRNO', errnoRet: 3, args: [{ index: 1, op: 'SCMP_CMP_EQ', value: 9 }] },
      ],
    };
    expect(ret(both, 'kill', [1, 9])).toBe(ERRNO(3));
    expect(ret(both, 'kill', [1, 2])).toBe(SECCOMP_RET.ALLOW);
  });

  it('names this architecture lacks are skipped; flags are carried', () => {
    const p = {
      defaultAction: 'SCMP_ACT_ALLOW',
      flags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG'],
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['socketcall', 'no_such_call', 'mkdir'], action: 'SCMP_ACT_ERRNO' }],
    };
    expect(compileSeccomp(p, 'x64').flags).toBe(3);
    expect(ret(p, 'mkdir')).toBe(ERRNO(1));
    // i386 not listed: killed as another architecture
    expect(runSeccomp(compileSeccomp(p, 'x64').program, { nr: 39, arch: AUDIT_ARCH.I386 }).ret).toBe(SECCOMP_RET.KILL_PROCESS);
  });

  it('a profile of thousands of rules stays within the kernel limit or is refused in one sentence', () => {
    const names = [...NR.keys()];
    const heavy = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: names.map((n, i) => ({ names: [n], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_GT', value: i }] })),
    };
    expect(refusal(heavy)).toMatch(/^config\.json: linux\.seccomp compiles to \d+ BPF instructions, more than the kernel's 4096$/);
  });

  it.each<[string, unknown, RegExp]>([
    ['a seccomp agent', { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock' }, /linux\.seccomp\.listenerPath is not supported/],
    [
      'SCMP_ACT_NOTIFY',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] },
      /linux\.seccomp\.syscalls\[0\]\.action SCMP_ACT_NOTIFY \(a seccomp agent\) is not supported/,
    ],
    ['an unknown action', { defaultAction: 'SCMP_ACT_MAYBE' }, /linux\.seccomp\.defaultAction "SCMP_ACT_MAYBE" is not a seccomp action/],
    [
      'an unknown operator',
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_XX' }] }],
      },
      /linux\.seccomp\.syscalls\[0\]\.args\[0\]\.op "SCMP_CMP_XX" is not a seccomp comparison/,
    ],
    [
      'an argument index out of range',
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, op: 'SCMP_CMP_EQ' }] }],
      },
      /linux\.seccomp\.syscalls\[0\]\.args\[0\]\.index must be a whole number from 0 to 5/,
    ],
    [
      'another machine',
      { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_ARM'] },
      /linux\.seccomp\.architectures\[0\] "SCMP_ARCH_ARM" is not an architecture of this machine/,
    ],
    ['an unknown flag', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_X'] }, /linux\.seccomp\.flags\[0\]/],
    ['an unknown field', { defaultAction: 'SCMP_ACT_ALLOW', extra: 1 }, /linux\.seccomp\.extra is not supported by novabox-oci/],
    ['no names', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] }, /syscalls\[0\]\.names must be a list/],
  ])('refuses %s in one sentence naming the field', (_what, profile, message) => {
    const m = refusal(profile);
    expect(m).toMatch(/^config\.json: linux\.seccomp/);
    expect(m).toMatch(message);
    expect(m.split('\n')).toHaveLength(1);
  });

  it('refuses another machine than x86_64', () => {
    expect(() => compileSeccomp(docker, 'arm64')).toThrow(/^config\.json: linux\.seccomp is supported by novabox-oci on x86_64 only/);
  });
});
