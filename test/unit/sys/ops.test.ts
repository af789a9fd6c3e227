import { describe, expect, it } from 'vitest';
import { capMask, describeOp, encodePlan, type LaunchPlan, type Op } from '../../../src/sys/ops.js';

/** sizeof(struct nb_plan_header) */
const H = 80;

const exec: Op = { op: 'exec', file: 'sh', searchPath: '/bin', argv: ['sh', '-c', 'true'], env: ['A=1'] };

function header(b: Buffer) {
  return {
    magic: b.readUInt32LE(0),
    abi: b.readUInt32LE(4),
    size: b.readUInt32LE(8),
    nOps: b.readUInt32LE(12),
    clone: b.readBigUInt64LE(16),
    flags: b.readUInt32LE(24),
  };
}

function cstr(b: Buffer, off: number): string {
  return b.toString('utf8', off, b.indexOf(0, off));
}

describe('encodePlan', () => {
  it('writes the header novabox.h expects', () => {
    const plan: LaunchPlan = { namespaces: ['mount', 'pid', 'net'], ops: [exec], tty: true };
    const b = encodePlan(plan);
    expect(header(b)).toEqual({
      magic: 0x3150424e,
      abi: 12,
      size: b.length,
      nOps: 1,
      clone: BigInt(0x00020000 | 0x20000000 | 0x40000000),
      flags: 1,
    });
    expect(b.byteOffset % 8).toBe(0);
  });

  it('userNamespace: its path and maps as a string list at header word 19 (byte 76), nothing in clone_flags', () => {
    const b = encodePlan({ namespaces: ['mount'], ops: [exec], tty: false, userNamespace: { path: '/proc/7/ns/user', uidMap: '0 9 1\n' } });
    const list = b.readUInt32LE(76);
    expect(b.readUInt32LE(list)).toBe(3);
    expect([0, 1, 2].map((i) => cstr(b, b.readUInt32LE(list + 4 + 4 * i)))).toEqual(['/proc/7/ns/user', '0 9 1\n', '']);
    expect(b.readUInt32LE(60)).toBe(0); // header.userns
    expect(b.readUInt32LE(16) & 0x10000000).toBe(0);
  });

  it('restorePidfile: NB_PLAN_RESTORE (0x40) and the pidfile at header word 18 (byte 72), word 19 (user_ns) 0', () => {
    const b = encodePlan({ namespaces: ['mount'], ops: [exec], tty: false, restorePidfile: '/run/r.pid' });
    expect(header(b).flags).toBe(0x40);
    expect(cstr(b, b.readUInt32LE(72))).toBe('/run/r.pid');
    expect(b.readUInt32LE(76)).toBe(0);
    expect(encodePlan({ namespaces: [], ops: [exec], tty: false }).readUInt32LE(72)).toBe(0);
  });

  it('encodes a sealed exec (NB_OPF_SEALED) and the exec_copy path in the header', () => {
    const plan: LaunchPlan = { namespaces: [], ops: [{ ...exec, sealed: true }], tty: false, execCopy: '/opt/novabox-init' };
    const b = encodePlan(plan);
    expect(b.readUInt32LE(H + 4)).toBe(0x2); // op_flags of ops[0]
    expect(cstr(b, b.readUInt32LE(56))).toBe('/opt/novabox-init'); // header.exec_copy
    expect(b.readUInt32LE(60)).toBe(0); // header.userns
    const plain = encodePlan({ namespaces: [], ops: [exec], tty: false });
    expect(plain.readUInt32LE(H + 4)).toBe(0);
    expect(plain.readUInt32LE(56)).toBe(0);
  });

  it('encodes the userns list in the header (NB_USERNS_LOWERS = 7), the userns and mount-fd ops, and chown steps', () => {
    const plan: LaunchPlan = {
      namespaces: ['user', 'mount'],
      ops: [{ op: 'userns' }, { op: 'mount-fd', target: '/c/rootfs' }, exec],
      tty: false,
      userns: {
        uidMap: '0 100 65536\n',
        gidMap: '0 200 65536\n',
        rootfs: { upper: '/c/u', work: '/c/w', flags: 'volatile', stage: '/c/rootfs', lowers: ['/l/b', '/l/a'] },
      },
      cgroupSteps: [{ step: 'chown', path: '/cg/c', uid: 100, gid: 200 }],
    };
    const b = encodePlan(plan);
    const list = b.readUInt32LE(60);
    const n = b.readUInt32LE(list);
    const items = Array.from({ length: n }, (_, i) => cstr(b, b.readUInt32LE(list + 4 + 4 * i)));
    expect(items).toEqual(['0 100 65536\n', '0 200 65536\n', '/c/u', '/c/w', 'volatile', '', '/c/rootfs', '/l/b', '/l/a']);
    expect(b.readUInt32LE(H)).toBe(24);
    expect(b.readUInt32LE(H + 64)).toBe(25);
    expect(cstr(b, b.readUInt32LE(H + 64 + 44))).toBe('/c/rootfs');
    const step = H + 3 * 64;
    expect(b.readUInt32LE(step)).toBe(8);
    expect(cstr(b, b.readUInt32LE(step + 12))).toBe('100:200');
    expect(describeOp({ op: 'mount-fd', target: '/c/rootfs' })).toBe('mount the idmapped root on /c/rootfs');
  });

  it('encodes on_exit (argv, "", environment) as a string list in the header; none: 0', () => {
    const plan: LaunchPlan = {
      namespaces: [],
      ops: [exec],
      tty: false,
      onExit: { argv: ['/usr/bin/node', '/nb/bin/novabox', 'server', '_exited', 'x'], env: ['NOVABOX_ROOT=/r'] },
    };
    const b = encodePlan(plan);
    const list = b.readUInt32LE(64);
    const items = Array.from({ length: b.readUInt32LE(list) }, (_, i) => cstr(b, b.readUInt32LE(list + 4 + 4 * i)));
    expect(items).toEqual(['/usr/bin/node', '/nb/bin/novabox', 'server', '_exited', 'x', '', 'NOVABOX_ROOT=/r']);
    expect(b.readUInt32LE(68)).toBe(0); // reserved
    expect(encodePlan({ namespaces: [], ops: [exec], tty: false }).readUInt32LE(64)).toBe(0);
  });

  it('encodes the cgroup steps after the ops (NB_CG_*, NB_CGF_*), counted in the header', () => {
    const plan: LaunchPlan = {
      namespaces: [],
      ops: [exec],
      tty: false,
      cgroupSteps: [
        { step: 'enable', path: '/cg/cgroup.subtree_control', controllers: ['memory', 'pids'] },
        { step: 'mkdir', path: '/cg/n/c', exclusive: true },
        { step: 'inherit', path: '/cg/n/c/cpuset.cpus', from: '/cg/n/cpuset.cpus' },
        { step: 'write', path: '/cg/n/c/memory.swap.max', value: '0', optional: true },
        { step: 'devices', path: '/cg/n/c' },
        { step: 'oom-count', path: '/cg/n/c/memory.events', key: 'oom_kill' },
        { step: 'rmdir', path: '/cg/n/c' },
        { step: 'rmdir', path: '/cg/n' },
      ],
    };
    const b = encodePlan(plan);
    expect(b.readUInt32LE(52)).toBe(8);
    const step = (i: number) => {
      const at = H + 64 + 16 * i;
      const s1 = b.readUInt32LE(at + 12);
      return [b.readUInt32LE(at), b.readUInt32LE(at + 4), cstr(b, b.readUInt32LE(at + 8)), s1 ? cstr(b, s1) : null];
    };
    expect(Array.from({ length: 8 }, (_, i) => step(i))).toEqual([
      [2, 0, '/cg/cgroup.subtree_control', 'memory pids'],
      [1, 1, '/cg/n/c', null],
      [3, 0, '/cg/n/c/cpuset.cpus', '/cg/n/cpuset.cpus'],
      [4, 2, '/cg/n/c/memory.swap.max', '0'],
      [5, 0, '/cg/n/c', null],
      [6, 0, '/cg/n/c/memory.events', 'oom_kill'],
      [7, 0, '/cg/n/c', null],
      [7, 0, '/cg/n', null],
    ]);
    // the strings start after the steps
    expect(cstr(b, H + 64 + 16 * 8)).not.toBe('');
  });

  it("lateOps: the monitor's plan has no ops and says so (NB_PLAN_LATE_OPS); the cgroup steps stay", () => {
    const plan: LaunchPlan = { namespaces: ['pid'], ops: [exec], tty: true, cgroupSteps: [{ step: 'rmdir', path: '/cg/n/c' }] };
    const frame = encodePlan({ ...plan, lateOps: true });
    expect(header(frame)).toMatchObject({ nOps: 0, flags: 0x1 | 0x8, size: frame.length });
    expect(frame.readUInt32LE(52)).toBe(1);
    expect(cstr(frame, frame.readUInt32LE(H + 8))).toBe('/cg/n/c');
    // the whole plan, as sendOps writes it
    expect(header(encodePlan(plan))).toMatchObject({ nOps: 1, flags: 0x1 });
  });

  it('consoleLog: NB_PLAN_CONSOLE_LOG (0x10) beside tty and the log; the system seccomp variant in n[0]', () => {
    const plan: LaunchPlan = {
      namespaces: [],
      ops: [{ op: 'seccomp', system: true }, exec],
      tty: true,
      logPath: '/s/log',
      consoleLog: true,
    };
    const b = encodePlan(plan);
    expect(header(b).flags).toBe(0x1 | 0x2 | 0x10);
    expect(b.readUInt32LE(H + 16)).toBe(1); // ops[0].n[0]
    const plain = encodePlan({ namespaces: [], ops: [{ op: 'seccomp' }, exec], tty: false });
    expect(header(plain).flags).toBe(0);
    expect(plain.readUInt32LE(H + 16)).toBe(0);
    expect(describeOp({ op: 'seccomp', system: true })).toBe("load the system container's seccomp filter");
  });

  it('encodes strings and string lists by offset', () => {
    const b = encodePlan({ namespaces: [], ops: [exec], tty: false });
    const op = H;
    expect(b.readUInt32LE(op)).toBe(19);
    expect(cstr(b, b.readUInt32LE(op + 40))).toBe('sh');
    expect(cstr(b, b.readUInt32LE(op + 44))).toBe('/bin');
    const list = b.readUInt32LE(op + 56);
    expect(list % 4).toBe(0);
    const n = b.readUInt32LE(list);
    const argv = Array.from({ length: n }, (_, i) => cstr(b, b.readUInt32LE(list + 4 + 4 * i)));
    expect(argv).toEqual(['sh', '-c', 'true']);
  });

  it('shares one copy of a repeated string', () => {
    const ops: Op[] = [
      { op: 'mkdir', path: 'dev', mode: 0o755, inRoot: true },
      { op: 'mkdir', path: 'dev', mode: 0o755, inRoot: true },
      exec,
    ];
    const b = encodePlan({ namespaces: [], ops, tty: false });
    expect(b.readUInt32LE(H + 44)).toBe(b.readUInt32LE(H + 64 + 44));
    expect(b.readUInt32LE(H + 4)).toBe(1); // NB_OPF_IN_ROOT
  });

  it('encodes mount flags and rlimits as numbers', () => {
    const ops: Op[] = [
      { op: 'mount', source: 'proc', target: 'proc', fstype: 'proc', flags: ['nosuid', 'nodev', 'noexec'], inRoot: true },
      { op: 'setrlimit', resource: 'nofile', soft: 1024n, hard: 0xffffffffffffffffn },
      exec,
    ];
    const b = encodePlan({ namespaces: [], ops, tty: false });
    expect(b.readBigUInt64LE(H + 8)).toBe(0xen);
    expect(b.readBigUInt64LE(H + 64 + 16)).toBe(7n);
    expect(b.readBigUInt64LE(H + 64 + 24)).toBe(1024n);
    expect(b.readBigUInt64LE(H + 64 + 32)).toBe(0xffffffffffffffffn);
  });

  it('lays out non-ASCII strings by their UTF-8 length', () => {
    const argv = ['echo', 'grüße €', '𝄞', 'plain'];
    const b = encodePlan({ namespaces: [], ops: [{ ...exec, argv, env: ['Z=ü'] }], tty: false, logPath: '/var/log/ß' });
    const list = b.readUInt32LE(H + 56);
    expect(Array.from({ length: 4 }, (_, i) => cstr(b, b.readUInt32LE(list + 4 + 4 * i)))).toEqual(argv);
    expect(cstr(b, b.readUInt32LE(b.readUInt32LE(H + 60) + 4))).toBe('Z=ü');
    expect(cstr(b, b.readUInt32LE(28))).toBe('/var/log/ß');
    expect(b.readUInt32LE(24)).toBe(2); // NB_PLAN_LOG
  });

  it('refuses a NUL byte inside a string', () => {
    expect(() => encodePlan({ namespaces: [], ops: [{ ...exec, argv: ['a\0b'] } as Op], tty: false })).toThrow(/NUL/);
  });
});

describe('capMask', () => {
  it.each([
    [['CHOWN'], 1n],
    [['CHOWN', 'KILL'], 1n | (1n << 5n)],
    [['SYS_ADMIN'], 1n << 21n],
    [['CHECKPOINT_RESTORE'], 1n << 40n],
  ] as const)('%j -> %s', (caps, mask) => {
    expect(capMask(caps)).toBe(mask);
  });
});

describe('describeOp', () => {
  it.each([
    [{ op: 'mount', source: 'tmpfs', target: 'dev', fstype: 'tmpfs', flags: [], inRoot: true }, 'mount tmpfs on /dev'],
    [{ op: 'mount', target: '/', flags: ['rec', 'private'] }, 'set propagation of /'],
    [{ op: 'mount', source: '/x', target: 'a', flags: ['bind'], inRoot: true }, 'bind /x on /a'],
    [{ op: 'exec', file: '/nope', searchPath: '', argv: ['/nope'], env: [] }, 'exec "/nope"'],
    [{ op: 'chdir', path: '/tmp' }, 'chdir /tmp'],
    [{ op: 'cgroup-join', path: '/sys/fs/cgroup/memory/novabox/x/tasks' }, 'join cgroup /sys/fs/cgroup/memory/novabox/x'],
  ] as [Op, string][])('%j', (op, text) => {
    expect(describeOp(op)).toBe(text);
  });
});
