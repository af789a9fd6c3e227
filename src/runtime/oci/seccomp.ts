/**
 * config.json's linux.seccomp (the engine's profile: Docker's and Podman's defaults, or a
 * user's) compiled to a classic BPF seccomp filter, the program the C executor loads in
 * place of novabox's own (native-bindings/src/seccomp.c, NB_OP_SECCOMP with a program).
 * Pure: unit-tested by running the program in a small interpreter (runSeccomp below).
 *
 * The rules are libseccomp's, as runc applies them: a syscall's rules with conditions on
 * its arguments are tried in the profile's order (conditions of one rule are all needed,
 * unless two name the same argument: then any one is enough, as runc splits them), then
 * its rule without conditions, then defaultAction. A name this architecture does not
 * have is skipped. A call of an architecture the profile does not list, or of the x32
 * ABI, kills the process (libseccomp's bad-architecture action); the profile's
 * x86_64 and 32-bit x86 (SCMP_ARCH_X86) rules are compiled, SCMP_ARCH_X32 is accepted
 * in the list and its calls killed.
 *
 * The program: the architecture test, then per architecture a binary search (JGE on a
 * pivot, JA over the lower half) over runs of syscall numbers that share one action; a
 * syscall whose rules have conditions is a run of its own, which jumps to a block after
 * the tree. Every
 * conditional jump goes to one of the next two instructions, far targets through a JA
 * (32-bit offset), so no program is limited by the 8-bit jump offsets.
 */
import { BadRequest } from '../../errors.js';
import { syscallsI386, syscallsX86_64 } from './syscalls.js';

// linux/seccomp.h, linux/audit.h, linux/filter.h
const RET_KILL_PROCESS = 0x80000000;
const RET_KILL_THREAD = 0;
const RET_TRAP = 0x00030000;
const RET_ERRNO = 0x00050000;
const RET_TRACE = 0x7ff00000;
const RET_LOG = 0x7ffc0000;
const RET_ALLOW = 0x7fff0000;
const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const X32_BIT = 0x40000000;
const EPERM = 1;

const BPF_LD_W_ABS = 0x20;
const BPF_ALU_AND_K = 0x54;
const BPF_JA = 0x05;
const BPF_JEQ_K = 0x15;
const BPF_JGT_K = 0x25;
const BPF_JGE_K = 0x35;
const BPF_RET_K = 0x06;
/** struct seccomp_data: nr, arch, instruction_pointer (u64), args[6] (u64) */
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARGS = 16;

/** seccomp(2)'s SECCOMP_FILTER_FLAG_* the profile may ask for */
const FILTER_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

/** The architectures a profile may list on x86_64; the others are refused (this host runs none of them). */
const ARCHES = new Set(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);

const OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'] as const;
type CmpOp = (typeof OPS)[number];

interface Cond {
  index: number;
  op: CmpOp;
  value: bigint;
  valueTwo: bigint;
}

interface Rule {
  action: number;
  /** all of them must hold */
  conds: Cond[];
}

export interface SeccompFilter {
  /** the sock_filter array, 8 bytes an instruction, as hex */
  program: string;
  /** SECCOMP_FILTER_FLAG_* */
  flags: number;
  /** instructions */
  length: number;
}

/** The kernel's limit on a classic BPF program (BPF_MAXINSNS). */
export const MAX_INSNS = 4096;

function refuse(field: string, why: string): never {
  throw new BadRequest(`config.json: ${field} ${why}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function errnoOf(v: unknown, field: string): number {
  if (v === undefined || v === null) return EPERM;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 4095) refuse(field, 'must be a whole number from 0 to 4095');
  return v;
}

/** An SCMP_ACT_* name and its errno (errnoRet) -> the filter's return value. */
function actionOf(name: unknown, errno: unknown, field: string, errnoField: string): number {
  switch (name) {
    case 'SCMP_ACT_ALLOW':
      return RET_ALLOW;
    case 'SCMP_ACT_ERRNO':
      return RET_ERRNO | errnoOf(errno, errnoField);
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET_KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return RET_TRAP;
    case 'SCMP_ACT_TRACE':
      return RET_TRACE | errnoOf(errno, errnoField);
    case 'SCMP_ACT_LOG':
      return RET_LOG;
    case 'SCMP_ACT_NOTIFY':
      return refuse(field, 'SCMP_ACT_NOTIFY (a seccomp agent) is not supported by novabox-oci');
    default:
      return refuse(field, `${JSON.stringify(name)} is not a seccomp action`);
  }
}

function u64(v: unknown, field: string): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) refuse(field, 'must be a whole number from 0 to 2^64-1');
  // JSON.parse reads 18446744073709551615 as 2^64
  return v >= 2 ** 64 ? 0xffffffffffffffffn : BigInt(v);
}

function onlyKnown(obj: Record<string, unknown>, known: string[], field: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k) && obj[k] !== undefined && obj[k] !== null) refuse(`${field}.${k}`, 'is not supported by novabox-oci');
  }
}

/** One syscalls[] entry's args -> the rules it adds (one, or one per condition: see the top). */
function rulesOf(action: number, args: unknown, field: string): Rule[] {
  if (args === undefined || args === null) return [{ action, conds: [] }];
  if (!Array.isArray(args)) refuse(field, 'must be a list');
  const conds = args.map((a: unknown, i: number): Cond => {
    const f = `${field}[${i}]`;
    if (!isObject(a)) refuse(f, 'must be an object');
    onlyKnown(a, ['index', 'value', 'valueTwo', 'op'], f);
    if (typeof a.index !== 'number' || !Number.isInteger(a.index) || a.index < 0 || a.index > 5)
      refuse(`${f}.index`, 'must be a whole number from 0 to 5');
    if (!OPS.includes(a.op as CmpOp)) refuse(`${f}.op`, `${JSON.stringify(a.op)} is not a seccomp comparison`);
    return { index: a.index, op: a.op as CmpOp, value: u64(a.value, `${f}.value`), valueTwo: u64(a.valueTwo, `${f}.valueTwo`) };
  });
  const indexes = new Set(conds.map((c) => c.index));
  if (indexes.size < conds.length) return conds.map((c) => ({ action, conds: [c] }));
  return [{ action, conds }];
}

/** linux.seccomp, checked: the default action and each syscall number's rules, per architecture. */
interface Profile {
  defaultAction: number;
  flags: number;
  arches: { audit: number; rules: Map<number, Rule[]> }[];
  x32: boolean;
}

function readProfile(s: unknown): Profile {
  const field = 'linux.seccomp';
  if (!isObject(s)) refuse(field, 'must be an object');
  if (s.listenerPath !== undefined && s.listenerPath !== '')
    refuse(`${field}.listenerPath`, 'is not supported by novabox-oci (no seccomp agent)');
  onlyKnown(s, ['defaultAction', 'defaultErrnoRet', 'architectures', 'flags', 'syscalls', 'listenerMetadata', 'listenerPath'], field);
  const defaultAction = actionOf(s.defaultAction, s.defaultErrnoRet, `${field}.defaultAction`, `${field}.defaultErrnoRet`);
  let flags = 0;
  for (const [i, f] of (Array.isArray(s.flags) ? s.flags : s.flags === undefined || s.flags === null ? [] : [null]).entries()) {
    if (typeof f !== 'string' || !(f in FILTER_FLAGS))
      refuse(`${field}.flags[${i}]`, `${JSON.stringify(f)} is not supported by novabox-oci (${Object.keys(FILTER_FLAGS).join(', ')})`);
    flags |= FILTER_FLAGS[f];
  }
  let archNames: string[] = ['SCMP_ARCH_X86_64'];
  if (s.architectures !== undefined && s.architectures !== null) {
    if (!Array.isArray(s.architectures)) refuse(`${field}.architectures`, 'must be a list');
    for (const [i, a] of s.architectures.entries()) {
      if (typeof a !== 'string' || !ARCHES.has(a))
        refuse(`${field}.architectures[${i}]`, `${JSON.stringify(a)} is not an architecture of this machine (x86_64, x86, x32)`);
    }
    if (s.architectures.length) archNames = s.architectures as string[];
    // the native architecture's calls are the filter's in any case (libseccomp adds it)
    if (!archNames.includes('SCMP_ARCH_X86_64')) archNames = ['SCMP_ARCH_X86_64', ...archNames];
  }
  const arches = archNames
    .filter((a) => a !== 'SCMP_ARCH_X32')
    .map((a) => ({
      audit: a === 'SCMP_ARCH_X86' ? AUDIT_ARCH_I386 : AUDIT_ARCH_X86_64,
      table: a === 'SCMP_ARCH_X86' ? syscallsI386() : syscallsX86_64(),
      rules: new Map<number, Rule[]>(),
    }));
  const syscalls = s.syscalls ?? [];
  if (!Array.isArray(syscalls)) refuse(`${field}.syscalls`, 'must be a list');
  syscalls.forEach((c: unknown, i: number) => {
    const f = `${field}.syscalls[${i}]`;
    if (!isObject(c)) refuse(f, 'must be an object');
    onlyKnown(c, ['names', 'action', 'errnoRet', 'args'], f);
    if (!Array.isArray(c.names) || c.names.length === 0 || c.names.some((n) => typeof n !== 'string' || n === ''))
      refuse(`${f}.names`, 'must be a list of system call names');
    const action = actionOf(c.action, c.errnoRet, `${f}.action`, `${f}.errnoRet`);
    const rules = rulesOf(action, c.args, `${f}.args`);
    // a rule with the default's action changes nothing (libseccomp refuses it, runc skips it)
    if (action === defaultAction) return;
    for (const arch of arches) {
      for (const name of c.names as string[]) {
        const nr = arch.table.get(name);
        if (nr === undefined) continue;
        const list = arch.rules.get(nr) ?? [];
        list.push(...rules);
        arch.rules.set(nr, list);
      }
    }
  });
  return {
    defaultAction,
    flags,
    arches: arches.map(({ audit, rules }) => ({ audit, rules })),
    x32: archNames.includes('SCMP_ARCH_X32'),
  };
}

/** An instruction whose jump target is a label, resolved at the end. */
interface Insn {
  code: number;
  k: number;
  jt: number;
  jf: number;
  /** BPF_JA to this label */
  to?: Label;
}
type Label = { at: number };

class Asm {
  insns: Insn[] = [];
  label(): Label {
    return { at: -1 };
  }
  bind(l: Label): void {
    l.at = this.insns.length;
  }
  emit(code: number, k: number, jt = 0, jf = 0): void {
    this.insns.push({ code, k: k >>> 0, jt, jf });
  }
  ja(to: Label): void {
    this.insns.push({ code: BPF_JA, k: 0, jt: 0, jf: 0, to });
  }
  ret(v: number): void {
    this.emit(BPF_RET_K, v);
  }
  ld(off: number): void {
    this.emit(BPF_LD_W_ABS, off);
  }
  /** if (A <code> k) goto l */
  ifTrue(code: number, k: number, l: Label): void {
    this.emit(code, k, 0, 1);
    this.ja(l);
  }
  /** if !(A <code> k) goto l */
  ifFalse(code: number, k: number, l: Label): void {
    this.emit(code, k, 1, 0);
    this.ja(l);
  }
  bytes(): Buffer {
    // sock_filter: u16 code, u8 jt, u8 jf, u32 k; little-endian hosts (x86-64) only
    const w = new Uint32Array(this.insns.length * 2);
    for (let pc = 0; pc < this.insns.length; pc++) {
      const ins = this.insns[pc];
      if (ins.to && ins.to.at < 0) throw new Error('seccomp: a label was never placed');
      w[pc * 2] = ins.code | (ins.jt << 16) | (ins.jf << 24);
      w[pc * 2 + 1] = ins.to ? ins.to.at - (pc + 1) : ins.k;
    }
    return Buffer.from(w.buffer, w.byteOffset, w.byteLength);
  }
}

const lo32 = (v: bigint): number => Number(v & 0xffffffffn);
const hi32 = (v: bigint): number => Number(v >> 32n);

/** The instructions of one condition: go on when it holds, else to `fail`. Clobbers A. */
function condition(a: Asm, c: Cond, fail: Label): void {
  const hiOff = OFF_ARGS + c.index * 8 + 4;
  const loOff = OFF_ARGS + c.index * 8;
  const ok = a.label();
  const vh = hi32(c.value);
  const vl = lo32(c.value);
  switch (c.op) {
    case 'SCMP_CMP_EQ':
      a.ld(hiOff);
      a.ifFalse(BPF_JEQ_K, vh, fail);
      a.ld(loOff);
      a.ifFalse(BPF_JEQ_K, vl, fail);
      break;
    case 'SCMP_CMP_NE':
      a.ld(hiOff);
      a.ifFalse(BPF_JEQ_K, vh, ok);
      a.ld(loOff);
      a.ifTrue(BPF_JEQ_K, vl, fail);
      break;
    case 'SCMP_CMP_MASKED_EQ': {
      // (arg & value) == valueTwo
      a.ld(hiOff);
      a.emit(BPF_ALU_AND_K, vh);
      a.ifFalse(BPF_JEQ_K, hi32(c.valueTwo), fail);
      a.ld(loOff);
      a.emit(BPF_ALU_AND_K, vl);
      a.ifFalse(BPF_JEQ_K, lo32(c.valueTwo), fail);
      break;
    }
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      // hi > vh: holds; hi < vh: fails; equal: the low words decide
      a.ld(hiOff);
      a.ifTrue(BPF_JGT_K, vh, ok);
      a.ifFalse(BPF_JEQ_K, vh, fail);
      a.ld(loOff);
      a.ifFalse(c.op === 'SCMP_CMP_GT' ? BPF_JGT_K : BPF_JGE_K, vl, fail);
      break;
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      a.ld(hiOff);
      a.ifFalse(BPF_JGE_K, vh, ok); // hi < vh: holds
      a.ifFalse(BPF_JEQ_K, vh, fail); // hi > vh: fails
      a.ld(loOff);
      a.ifTrue(c.op === 'SCMP_CMP_LT' ? BPF_JGE_K : BPF_JGT_K, vl, fail);
      break;
  }
  a.bind(ok);
}

/** A syscall's rules, entered with anything in A: conditional ones in order, then the unconditional one, then the default. */
function block(a: Asm, rules: Rule[], defaultAction: number): void {
  const conditional = rules.filter((r) => r.conds.length > 0);
  const plain = rules.find((r) => r.conds.length === 0);
  for (const r of conditional) {
    const next = a.label();
    for (const c of r.conds) condition(a, c, next);
    a.ret(r.action);
    a.bind(next);
  }
  a.ret(plain ? plain.action : defaultAction);
}

/** A run of syscall numbers from `lo` up to the next run's start: one constant action, or a block of rules. */
interface Run {
  lo: number;
  action?: number;
  rules?: Rule[];
}

/**
 * The number line cut into runs: consecutive numbers with the same constant action are one
 * run, the gaps between them the default's. Docker's ~350 allowed calls are a few dozen runs.
 */
function runsOf(rules: Map<number, Rule[]>, defaultAction: number): Run[] {
  const runs: Run[] = [{ lo: 0, action: defaultAction }];
  const push = (r: Run) => {
    const last = runs[runs.length - 1];
    if (last.lo === r.lo) runs.pop();
    const prev = runs[runs.length - 1];
    if (prev && r.action !== undefined && prev.action === r.action) return;
    runs.push(r);
  };
  for (const nr of [...rules.keys()].sort((x, y) => x - y)) {
    const r = rules.get(nr) as Rule[];
    push(r.every((x) => x.conds.length === 0) ? { lo: nr, action: r[0].action } : { lo: nr, rules: r });
    push({ lo: nr + 1, action: defaultAction });
  }
  return runs;
}

/** The binary search over the runs, entered with the syscall number in A. */
function tree(a: Asm, runs: Run[], blocks: [Label, Rule[]][]): void {
  if (runs.length === 1) {
    const r = runs[0];
    if (r.rules) {
      const l = a.label();
      blocks.push([l, r.rules]);
      a.ja(l);
    } else a.ret(r.action as number);
    return;
  }
  const mid = runs.length >> 1;
  const upper = a.label();
  a.ifTrue(BPF_JGE_K, runs[mid].lo, upper);
  tree(a, runs.slice(0, mid), blocks);
  a.bind(upper);
  tree(a, runs.slice(mid), blocks);
}

/** linux.seccomp -> the filter; one sentence naming the field for what novabox-oci cannot do. */
export function compileSeccomp(s: unknown, arch: string = process.arch): SeccompFilter {
  if (arch !== 'x64') refuse('linux.seccomp', `is supported by novabox-oci on x86_64 only (this machine is ${arch})`);
  const p = readProfile(s);
  const a = new Asm();
  a.ld(OFF_ARCH);
  const archLabels = p.arches.map(() => a.label());
  p.arches.forEach((arch, i) => a.ifTrue(BPF_JEQ_K, arch.audit, archLabels[i]));
  a.ret(RET_KILL_PROCESS);
  const blocks: [Label, Rule[]][] = [];
  p.arches.forEach((arch, i) => {
    a.bind(archLabels[i]);
    a.ld(OFF_NR);
    if (arch.audit === AUDIT_ARCH_X86_64) {
      // the x32 ABI: its numbers carry this bit (see the top)
      a.emit(BPF_JGE_K, X32_BIT, 0, 1);
      a.ret(RET_KILL_PROCESS);
    }
    tree(a, runsOf(arch.rules, p.defaultAction), blocks);
  });
  for (const [l, rules] of blocks) {
    a.bind(l);
    block(a, rules, p.defaultAction);
  }
  if (a.insns.length > MAX_INSNS)
    refuse('linux.seccomp', `compiles to ${a.insns.length} BPF instructions, more than the kernel's ${MAX_INSNS}`);
  return { program: a.bytes().toString('hex'), flags: p.flags, length: a.insns.length };
}

/** What the kernel would return for one call: classic BPF as seccomp runs it (for the tests). */
export function runSeccomp(
  program: string,
  call: { nr: number; arch?: number; args?: (bigint | number)[] },
): { ret: number; steps: number } {
  const p = Buffer.from(program, 'hex');
  const data = Buffer.alloc(64);
  data.writeUInt32LE(call.nr >>> 0, OFF_NR);
  data.writeUInt32LE((call.arch ?? AUDIT_ARCH_X86_64) >>> 0, OFF_ARCH);
  (call.args ?? []).forEach((v, i) => data.writeBigUInt64LE(BigInt(v), OFF_ARGS + i * 8));
  let acc = 0;
  let pc = 0;
  let steps = 0;
  const n = p.length / 8;
  while (pc < n) {
    const code = p.readUInt16LE(pc * 8);
    const jt = p.readUInt8(pc * 8 + 2);
    const jf = p.readUInt8(pc * 8 + 3);
    const k = p.readUInt32LE(pc * 8 + 4);
    pc++;
    steps++;
    switch (code) {
      case BPF_LD_W_ABS:
        acc = data.readUInt32LE(k);
        break;
      case BPF_ALU_AND_K:
        acc = (acc & k) >>> 0;
        break;
      case BPF_JA:
        pc += k;
        break;
      case BPF_JEQ_K:
        pc += acc === k ? jt : jf;
        break;
      case BPF_JGT_K:
        pc += acc > k ? jt : jf;
        break;
      case BPF_JGE_K:
        pc += acc >= k ? jt : jf;
        break;
      case BPF_RET_K:
        return { ret: k, steps };
      default:
        throw new Error(`seccomp: unknown instruction ${code} at ${pc - 1}`);
    }
  }
  throw new Error('seccomp: the program ran off its end');
}

export const SECCOMP_RET = {
  KILL_PROCESS: RET_KILL_PROCESS,
  KILL_THREAD: RET_KILL_THREAD,
  TRAP: RET_TRAP,
  ERRNO: RET_ERRNO,
  TRACE: RET_TRACE,
  LOG: RET_LOG,
  ALLOW: RET_ALLOW,
};
export const AUDIT_ARCH = { X86_64: AUDIT_ARCH_X86_64, I386: AUDIT_ARCH_I386 };
