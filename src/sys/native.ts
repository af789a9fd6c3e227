/**
 * The only door to the kernel: koffi bindings to native-bindings/build/libnovabox.so
 * and to a few libc calls, and build/novabox.node where it is built. This file loads them
 * and holds the start path's calls (spawn, the R/G gates, reap, pidfds, signals); its
 * siblings hold the rest by concern: events.ts (the monitor's events), layer.ts (packing
 * layers), net.ts (bridge and veth). Everything is synchronous unless it says otherwise;
 * errors become SysError (syscall, path, errno name).
 */
import { createRequire } from 'node:module';
import { closeSync, existsSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BadRequest, Conflict, NovaboxError, SysError } from '../errors.js';
import { errnoName, errnoText } from './errno.js';
import { ABI as NB_ABI, describeCgroupStep, encodePlan, type LaunchPlan } from './ops.js';
import { trace } from '../util/trace.js';
import { MONITOR_EVENT, readEvent } from './events.js';
import { setExitHook } from '../util/exit.js';

type Koffi = typeof import('koffi');

let root: string | undefined;

/**
 * The project root: two levels up from src/sys (sources) or one from dist/ (the bundle).
 * The bundle defines import.meta.dirname as its __dirname: no URL is made on a start
 * (the first pathToFileURL/fileURLToPath of a process cost ~0.6 ms together).
 */
export function projectRoot(): string {
  if (root) return root;
  const here = import.meta.dirname ?? dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'native-bindings'))) return (root = dir);
    dir = dirname(dir);
  }
  throw new Error('cannot find native-bindings/ above ' + here);
}

export function nativeBuildDir(): string {
  return process.env.NOVABOX_NATIVE_DIR ?? join(projectRoot(), 'native-bindings', 'build');
}

export function monitorPath(): string {
  return join(nativeBuildDir(), 'novabox-monitor');
}

export interface SpawnResult {
  monitorPid: number;
  initPid: number;
  eventsFd: number;
  goFd: number;
  /** with tty: the socket the init sends the pty master on (recvFd); else -1 */
  consoleFd: number;
  /** awaitInit: the monitor could not make the plan's cgroup (it removed what it made) */
  cgroupRefused?: boolean;
  /** release(sp, 'R') was called: the init may run its ops */
  ready?: boolean;
  /** spawned with lateOps: the ops plan's memfd until sendOps() wrote and closed it; else -1 */
  opsFd: number;
}

export interface SpawnOptions {
  stdio: [number, number, number];
  /** shown as the monitor's argv[1] (ps): the container's cgroup path */
  tag: string;
  tty?: boolean;
  /**
   * The monitor gets the plan without its ops (it makes the cgroup and clones the init
   * meanwhile); sendOps() gives the init the whole plan, before release(sp, 'R').
   */
  lateOps?: boolean;
  /** OCI --preserve-fds: this process's fds 3 .. 3+n-1 become the container process's (the plan's exec op has the same n) */
  preserveFds?: number;
}

export interface Bindings {
  nb_spawn: (plan: Buffer, len: number, args: object, out: Record<string, number>) => number;
  nb_pty_resize: (fd: number, rows: number, cols: number) => number;
  nb_recv_fd: (sock: number) => number;
  nb_send_fd: (path: string, fd: number, name: string) => number;
  nb_cgroup_devices_allow: (dir: string, extra: string) => number;
  nb_abi_version: () => number;
  nb_layer_pack_shifted: ((
    src: string,
    tarFd: number,
    mirror: string | null,
    syncfs: number,
    uidBase: number,
    gidBase: number,
    idCount: number,
    digest: Buffer,
    err: Buffer,
    errLen: number,
  ) => number | bigint) & {
    async: (
      src: string,
      tarFd: number,
      mirror: string | null,
      syncfs: number,
      uidBase: number,
      gidBase: number,
      idCount: number,
      digest: Buffer,
      err: Buffer,
      errLen: number,
      cb: (e: unknown, n: number | bigint) => void,
    ) => void;
  };
  nb_sha256: (data: Buffer, len: number, out: Buffer) => void;
  nb_layer_whiteout: (path: string) => number;
  nb_layer_set_opaque: (dir: string) => number;
  waitpid: (pid: number, status: Int32Array, options: number) => number;
  syscall2: (nr: number, a: number, b: number) => number;
  syscall4: (nr: number, a: number, b: number, c: number, d: number) => number;
  errno: () => number;
}

let bound: Bindings | undefined;
let koffiLib: { koffi: Koffi; lib: ReturnType<Koffi['load']> } | undefined;

declare const NOVABOX_KOFFI_NODE: string | null | undefined;

/**
 * koffi's JS entry detects the platform by parsing the node binary's ELF headers and
 * wraps deprecated helpers: ~8 ms on every start, against ~2.4 ms for the native module
 * itself. scripts/build.mjs finds the prebuilt module koffi's own loader would take first
 * (the @koromix/koffi-<platform>-<arch> package, of koffi's version; the musl build on
 * musl) and bakes its path, relative to the project, into the bundle: here it is only
 * opened with process.dlopen, as require() would after resolving it. Without a baked path
 * (sources run by vitest, a mismatch or musl at build time) or when the file is gone,
 * koffi's entry loads it. Only this function loads koffi, once per process (bind() keeps it).
 */
function loadKoffi(): Koffi {
  const rel = typeof NOVABOX_KOFFI_NODE === 'string' ? NOVABOX_KOFFI_NODE : null;
  if (rel) {
    const addon = { exports: {} as Koffi };
    try {
      process.dlopen(addon, join(projectRoot(), rel));
      return addon.exports;
    } catch {
      /* moved or removed since the build: koffi's own loader */
    }
  }
  return createRequire(import.meta.url)('koffi') as Koffi;
}

/**
 * An object whose properties are made on first read: each koffi prototype is parsed
 * only when a call needs it (`run` on the koffi path binds 3 of the ~14, ~0.07 ms each).
 */
function lazily<T extends object>(makers: { [K in keyof T]: () => T[K] }): T {
  const o = {} as T;
  for (const k of Object.keys(makers) as (keyof T)[]) {
    Object.defineProperty(o, k, {
      configurable: true,
      enumerable: true,
      get() {
        const v = makers[k]();
        Object.defineProperty(o, k, { value: v, enumerable: true });
        return v;
      },
    });
  }
  return o;
}

function bind(): Bindings {
  if (bound) return bound;
  const koffi = loadKoffi();
  trace('koffi loaded');
  const path = join(nativeBuildDir(), 'libnovabox.so');
  if (!existsSync(path)) {
    throw new Error(`native library missing: ${path} (run "npm install" or "make -C native-bindings")`);
  }
  const lib = koffi.load(path);
  koffiLib = { koffi, lib };
  const abi = lib.func('uint32_t nb_abi_version(void)') as () => number;
  if (abi() !== NB_ABI) throw new Error(`native library ABI ${abi()} does not match this build (${NB_ABI})`);
  let libc: ReturnType<Koffi['load']> | undefined;
  const c = () => (libc ??= koffi.load('libc.so.6'));
  bound = lazily<Bindings>({
    nb_spawn: () => {
      koffi.struct('nb_spawn_args', {
        monitor_path: 'const char *',
        monitor_tag: 'const char *',
        stdio: koffi.array('int32_t', 3),
        tty: 'int32_t',
        preserve_fds: 'int32_t',
      });
      koffi.struct('nb_spawn_result', {
        monitor_pid: 'int32_t',
        init_pid: 'int32_t',
        events_fd: 'int32_t',
        go_fd: 'int32_t',
        console_fd: 'int32_t',
        stage: 'int32_t',
        ops_fd: 'int32_t',
      });
      return lib.func('int nb_spawn(const void *plan, uint32_t len, const nb_spawn_args *args, _Out_ nb_spawn_result *out)');
    },
    nb_pty_resize: () => lib.func('int nb_pty_resize(int fd, uint16_t rows, uint16_t cols)'),
    nb_recv_fd: () => lib.func('int nb_recv_fd(int sock)'),
    nb_send_fd: () => lib.func('int nb_send_fd(const char *path, int fd, const char *name)'),
    nb_cgroup_devices_allow: () => lib.func('int nb_cgroup_devices_allow(const char *dir, const char *extra)'),
    nb_abi_version: () => abi,
    nb_layer_pack_shifted: () =>
      lib.func(
        'int64_t nb_layer_pack_shifted(const char *src, int tarfd, const char *mirror, int do_syncfs, uint32_t uid_base, uint32_t gid_base, uint32_t id_count, uint8_t *digest, char *err, uint32_t errlen)',
      ),
    nb_sha256: () => lib.func('void nb_sha256(const uint8_t *data, size_t len, uint8_t *out)'),
    nb_layer_whiteout: () => lib.func('int nb_layer_whiteout(const char *path)'),
    nb_layer_set_opaque: () => lib.func('int nb_layer_set_opaque(const char *dir)'),
    waitpid: () => c().func('int waitpid(int pid, _Out_ int *status, int options)'),
    syscall2: () => c().func('long syscall(long nr, long a, long b)'),
    syscall4: () => c().func('long syscall(long nr, long a, long b, long c, long d)'),
    errno: () => () => koffi.errno(),
  });
  // bound when the quick exit is taken (unless the Node-API module's is installed already)
  let exit: ((code: number) => void) | undefined;
  if (!fastBound) setExitHook((code) => (exit ??= c().func('void _exit(int status)') as (code: number) => void)(code));
  return bound;
}

/**
 * The start path's calls through build/novabox.node (native-bindings/src/napi.c): the same
 * C functions as libnovabox.so, as a Node-API module. It loads in ~0.2 ms where koffi
 * takes ~1.5 ms of initialisation plus the binding of each prototype, so a container
 * start (spawn, wait, pidfd, console, exit) never loads koffi; everything else still goes
 * through koffi (bind()). Every function returns a value or -errno.
 */
interface StartCalls {
  abi: () => number;
  spawn: (
    plan: Uint8Array,
    monitorPath: string,
    tag: string,
    in0: number,
    out1: number,
    err2: number,
    tty: number,
    preserveFds: number,
    result: Int32Array,
  ) => number;
  waitpid: (pid: number, options: number, status: Int32Array) => number;
  pidfdOpen: (pid: number) => number;
  pidfdSignal: (pidfd: number, signal: number) => number;
  recvFd: (sock: number) => number;
  sendFd: (path: string, fd: number, name: string) => number;
  ptyResize: (fd: number, rows: number, cols: number) => number;
  /** extra: devices.allow lines beyond the fixed list, newline-separated ('' none) */
  cgroupDevices: (dir: string, extra: string) => number;
}

interface FastBindings extends StartCalls {
  /** a build older than idmap.c has none */
  idmapTake?: (dir: string, subuid: string, subgid: string, passwd: string, group: string, kindOwner: string) => string | number;
  /** a build older than rundir.c has none */
  rmRunDir?: (dir: string) => Promise<number>;
  rmRunDirSync?: (dir: string) => number;
  forwardSignals?: (pidfd: number, signals: Int32Array) => number;
  /** a build older than opaque.c has none */
  layerIsOpaque?: (dir: string) => number;
  exit: (code: number) => void;
  /** net.c (a build older than ABI 12 has none): addresses are network-order u32 bits */
  netBridge?: (name: string, addr: number, prefixLen: number, mtu: number, mac: Uint8Array) => number;
  netAttach?: (
    bridge: string,
    hostIf: string,
    alias: string,
    pid: number,
    addr: number,
    gateway: number,
    prefixLen: number,
    mtu: number,
    mac: Uint8Array,
    stage: Int32Array,
  ) => number;
  netLinkDel?: (name: string) => number;
}

/** The bridge network's calls through build/novabox.node, or undefined (koffi: sys/net.ts binds them). */
export function fastNet(): Pick<FastBindings, 'netBridge' | 'netAttach' | 'netLinkDel'> | undefined {
  const f = fast();
  return f?.netAttach ? f : undefined;
}

let fastBound: FastBindings | null | undefined;

/**
 * The Node-API module, or null: not built (koffi then serves these calls too), of another
 * ABI, or NOVABOX_FFI=koffi (the tests run the start path both ways).
 */
function fast(): FastBindings | null {
  if (fastBound !== undefined) return fastBound;
  fastBound = null;
  if (process.env.NOVABOX_FFI === 'koffi') return null;
  const mod = { exports: {} as FastBindings };
  try {
    process.dlopen(mod, join(nativeBuildDir(), 'novabox.node'));
  } catch {
    return null; // not built (an install that predates it): koffi
  }
  if (mod.exports.abi() !== NB_ABI) return null;
  fastBound = mod.exports;
  setExitHook((code) => mod.exports.exit(code));
  trace('native module loaded');
  return fastBound;
}

/**
 * Remove a `run` container's directory of the usual layout in the thread pool
 * (native-bindings/src/rundir.c): resolves to 0, or -errno when something else is in it.
 * undefined without build/novabox.node: the caller removes it itself.
 */
export function rmRunDir(dir: string): Promise<number> | undefined {
  return fast()?.rmRunDir?.(dir);
}

/**
 * An id range lease taken in C (native-bindings/src/idmap.c, the rules of
 * runtime/userns/leases.ts): its line and the links read, or undefined when the caller's
 * own takeLease must decide (nothing was made: first use, bad input, none free, an old
 * build, or koffi). `kindOwner`: 'c' or 's', then the owner's id.
 */
export function idmapTake(dir: string, files: [string, string, string, string], kindOwner: string): string | undefined {
  const r = fast()?.idmapTake?.(dir, ...files, kindOwner);
  return typeof r === 'string' ? r : undefined;
}

/** rmRunDir's work on this thread: 0 or -errno; undefined without build/novabox.node. */
export function rmRunDirSync(dir: string): number | undefined {
  return fast()?.rmRunDirSync?.(dir);
}

/**
 * nb_layer_is_opaque through build/novabox.node (1, 0 or -errno), or undefined without it:
 * a systemd server's create asks it of its image's layers, and the Node-API module is
 * loaded on the start path anyway, koffi and libnovabox.so are not (~2-3 ms).
 */
export function layerIsOpaqueFast(dir: string): number | undefined {
  return fast()?.layerIsOpaque?.(dir);
}

/**
 * Can forwardSignals() work here: build/novabox.node, whose C handler forwards a signal
 * while the main thread blocks in a read (koffi cannot: its callbacks run JavaScript).
 */
export function canForwardSignals(): boolean {
  return fast()?.forwardSignals !== undefined;
}

/**
 * Until the returned function is called, each of `signals` that reaches this process is
 * sent to the pidfd's process by a C signal handler (build/novabox.node), not by the
 * event loop: the caller may then block in readSync for the monitor's events.
 */
export function forwardSignals(pidfd: number, signals: number[]): () => void {
  const f = fast();
  if (!f?.forwardSignals) throw new Error('signal forwarding needs build/novabox.node');
  const sigs = Int32Array.from(signals);
  const rc = f.forwardSignals(pidfd, sigs);
  if (rc < 0) throw new SysError('sigaction', errnoName(rc), undefined, `cannot forward signals: ${errnoText(rc)}`);
  return () => void f.forwardSignals!(-1, sigs);
}

const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_SEND_SIGNAL = 424;
let koffiCalls: StartCalls | undefined;

/**
 * The start path's calls: the Node-API module's, or the same through koffi (no module, or
 * NOVABOX_FFI=koffi) with errno folded into the return value as the module does.
 */
function startCalls(): StartCalls {
  const f = fast();
  if (f) return f;
  if (koffiCalls) return koffiCalls;
  const b = bind();
  trace('bound');
  const orErrno = (r: number) => (r < 0 ? -b.errno() : r);
  return (koffiCalls = {
    abi: () => b.nb_abi_version(),
    spawn: (plan, monitorPath, tag, in0, out1, err2, tty, preserveFds, result) => {
      const out: Record<string, number> = {};
      const rc = b.nb_spawn(
        plan as Buffer,
        plan.length,
        { monitor_path: monitorPath, monitor_tag: tag, stdio: [in0, out1, err2], tty, preserve_fds: preserveFds },
        out,
      );
      result.set([out.monitor_pid, out.init_pid, out.events_fd, out.go_fd, out.console_fd, out.stage, out.ops_fd]);
      return rc;
    },
    waitpid: (pid, options, status) => orErrno(b.waitpid(pid, status, options)),
    pidfdOpen: (pid) => orErrno(b.syscall2(SYS_PIDFD_OPEN, pid, 0)),
    pidfdSignal: (pidfd, signal) => orErrno(b.syscall4(SYS_PIDFD_SEND_SIGNAL, pidfd, signal, 0, 0)),
    recvFd: (sock) => b.nb_recv_fd(sock),
    sendFd: (path, fd, name) => b.nb_send_fd(path, fd, name),
    ptyResize: (fd, rows, cols) => b.nb_pty_resize(fd, rows, cols),
    cgroupDevices: (dir, extra) => b.nb_cgroup_devices_allow(dir, extra),
  });
}

/** Which door the start path uses: 'node-api' (build/novabox.node) or 'koffi'. */
export function startPathFfi(): 'node-api' | 'koffi' {
  return fast() ? 'node-api' : 'koffi';
}

const STAGES: Record<number, string> = {
  1: 'check the launch plan',
  2: 'start the container init',
  3: 'synchronise with the container init',
  4: 'open the console log',
  5: 'enter the namespaces of the running container',
  6: "set up the container's cgroup",
  7: 'place the container init in its cgroup',
  8: 'copy novabox-init into a sealed memfd',
  9: "write the uid and gid maps of the container's user namespace",
  10: 'enter the pid namespace the container joins (linux.namespaces, type pid)',
  11: 'enter the user namespace the container joins (linux.namespaces, type user)',
};
const STAGE_USER_NS = 11;
const STAGE_CGROUP = 6;

/**
 * Start a monitor for `plan`. Returns at once; the init pid comes with awaitInit(),
 * so the caller can do its own work while the monitor makes the cgroup and clones (with
 * opts.lateOps, the encoding of the ops too: sendOps()).
 */
export function spawn(plan: LaunchPlan, opts: SpawnOptions): SpawnResult {
  const calls = startCalls();
  const test = process.env.NOVABOX_TEST_PLAIN_CLONE === '1';
  const bytes = encodePlan(test || opts.lateOps ? { ...plan, plainClone: test || plan.plainClone, lateOps: opts.lateOps } : plan);
  trace(opts.lateOps ? 'monitor plan encoded' : 'plan encoded');
  const out = new Int32Array(7); // struct nb_spawn_result
  const rc = calls.spawn(
    bytes,
    monitorPath(),
    opts.tag,
    opts.stdio[0],
    opts.stdio[1],
    opts.stdio[2],
    opts.tty ? 1 : 0,
    opts.preserveFds ?? 0,
    out,
  );
  const [monitorPid, , eventsFd, goFd, consoleFd, stage, opsFd] = out;
  if (rc < 0) {
    const what = STAGES[stage] ?? 'spawn the container';
    throw new SysError('nb_spawn', errnoName(rc), undefined, `cannot ${what}: ${errnoText(rc)}`);
  }
  return { monitorPid, initPid: -1, eventsFd, goFd, consoleFd, opsFd };
}

/**
 * The whole plan for an init spawned with lateOps, written into its memfd and closed: it
 * must come before release(sp, 'R'), after which the init maps it (a plan it refuses is
 * NB_EV_OPFAIL with op -2).
 */
export function sendOps(sp: SpawnResult, plan: LaunchPlan): void {
  const bytes = encodePlan(plan);
  const fd = sp.opsFd;
  sp.opsFd = -1;
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at, at);
  } finally {
    closeSync(fd);
  }
  trace('plan encoded');
}

/**
 * Open one of the init's two gates on the GO pipe: 'R' before its first op (what the ops
 * use exists: the container directory, /etc files; it is in its cgroup, which the monitor
 * sees to), 'G' before its execve (the CLI is done: record, veth, signal forwarding; the
 * pipe is closed then). 'G' sends 'R' too if it was not sent. Returns false when the init
 * is gone (EPIPE: an op failed, or the monitor did; its events say which).
 */
export function release(sp: SpawnResult, gate: 'R' | 'G'): boolean {
  const bytes = gate === 'G' && !sp.ready ? 'RG' : gate;
  sp.ready = true;
  let sent = true;
  try {
    writeSync(sp.goFd, bytes);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
    sent = false;
  }
  if (gate === 'G') {
    closeSync(sp.goFd);
    sp.goFd = -1; // closed: an undo must not close the number again (EBADF, or a reused fd)
  }
  return sent;
}

/**
 * Block until the monitor reports the init's pid (NB_EV_PID); sets sp.initPid. `placed`:
 * the init is in plan.cgroupDir (cloned there, or placed by the monitor before its first
 * op), so the caller must not write cgroup.procs.
 * A failed cgroup step of `plan` is named with its file and errno (the monitor removed
 * what it made): a Conflict when the cgroup itself existed.
 */
export function awaitInit(sp: SpawnResult, plan?: LaunchPlan): { pid: number; placed: boolean } {
  const e = readEvent(sp.eventsFd, true);
  if (e === 'eof') throw new SysError('nb_spawn', 'EPIPE', undefined, 'the container monitor exited before starting the container');
  const { type } = e;
  if (type === MONITOR_EVENT.ERROR) {
    const errno = e.b;
    const step = plan?.cgroupSteps?.[e.c];
    if (e.a === STAGE_CGROUP) sp.cgroupRefused = true;
    if (e.a === STAGE_CGROUP && step) {
      if (step.step === 'mkdir' && step.exclusive && errnoName(errno) === 'EEXIST') {
        throw new Conflict(`cgroup ${step.path} already exists`, {
          hint: 'another container uses it, or a crash left it behind: remove it or pick another name',
        });
      }
      throw new NovaboxError(
        'sys',
        `cannot set up the container's cgroup: ${describeCgroupStep(step)}: ${errnoText(errno)} (${errnoName(errno)})`,
      );
    }
    if (e.a === STAGE_USER_NS && e.c === 1)
      throw new BadRequest(
        'linux.uidMappings and linux.gidMappings are not the maps of the user namespace the container joins (linux.namespaces, type user)',
      );
    const what = STAGES[e.a] ?? 'spawn the container';
    throw new SysError('nb_spawn', errnoName(errno), undefined, `cannot ${what}: ${errnoText(errno)}`);
  }
  if (type !== MONITOR_EVENT.PID) throw new SysError('nb_spawn', 'EPROTO', undefined, `unexpected event ${type} from the monitor`);
  sp.initPid = e.a;
  return { pid: sp.initPid, placed: e.b === 1 };
}

/** cgroup v2: attach the device allow-list (eBPF) to a cgroup directory. */
export function cgroupDevices(dir: string, allow: readonly string[] = []): void {
  const rc = startCalls().cgroupDevices(dir, allow.join('\n'));
  if (rc < 0) throw new SysError('bpf (device filter)', errnoName(rc), dir, errnoText(rc));
}

/**
 * The library's bindings, loaded on first use: for the other modules of src/sys (layer.ts,
 * net.ts), which declare their own calls on it.
 */
export function library(): { bindings: Bindings; koffi: Koffi; lib: ReturnType<Koffi['load']> } {
  const bindings = bind();
  return { bindings, ...koffiLib! };
}

/** Whether the native library is loaded already (loading it costs ~2 ms). */
export function isLoaded(): boolean {
  return bound !== undefined;
}

/** Load the library now (a snapshot does, before it freezes the server: not inside the freeze). */
export function preload(): void {
  bind();
}

/** Receive the pty master the init sends after GO (blocks briefly). */
export function recvFd(sock: number): number {
  const fd = startCalls().recvFd(sock);
  if (fd < 0) throw new SysError('recvmsg', errnoName(fd), undefined, 'the container closed its console socket');
  return fd;
}

/** Send fd (with SCM_RIGHTS, `name` as the message) to the unix socket at `path`: an OCI engine's console socket. */
export function sendFd(path: string, fd: number, name: string): void {
  const rc = startCalls().sendFd(path, fd, name);
  if (rc < 0) throw new SysError('sendmsg (console socket)', errnoName(rc), path, errnoText(rc));
}

export function ptyResize(fd: number, rows: number, cols: number): void {
  const rc = startCalls().ptyResize(fd, rows, cols);
  if (rc < 0) throw new SysError('ioctl TIOCSWINSZ', errnoName(rc));
}

const WNOHANG = 1;

/** Reap a child of this process (the monitor nb_spawn started). Returns its wait status or null. */
export function reap(pid: number, block = true): number | null {
  const calls = startCalls();
  const status = new Int32Array(1);
  for (;;) {
    const r = calls.waitpid(pid, block ? 0 : WNOHANG, status);
    if (r === pid) return status[0];
    if (r === 0) return null;
    const e = errnoName(r); // -errno
    if (e === 'EINTR') continue;
    if (e === 'ECHILD') return null;
    throw new SysError('waitpid', e, String(pid));
  }
}

/** pidfd_open(2): a handle that keeps naming this process even after its pid is reused. */
export function pidfdOpen(pid: number): number {
  const fd = startCalls().pidfdOpen(pid);
  if (fd < 0) throw new SysError('pidfd_open', errnoName(fd), String(pid));
  return fd;
}

/** pidfd_send_signal(2). Returns false if the process is gone. */
export function pidfdSignal(pidfd: number, signal: number): boolean {
  const rc = startCalls().pidfdSignal(pidfd, signal);
  if (rc === 0) return true;
  const e = errnoName(rc);
  if (e === 'ESRCH') return false;
  throw new SysError('pidfd_send_signal', e);
}

/** Decode a wait(2) status into an exit code the shell would show: code, or 128 + signal. */
export function waitStatusToExitCode(status: number): { code: number; signal?: number } {
  const sig = status & 0x7f;
  if (sig === 0) return { code: (status >> 8) & 0xff };
  return { code: 128 + sig, signal: sig };
}
