/**
 * The Nova model of servers: what may happen to a server, in which state, recorded
 * how. The CLI and the API call this; the runtime does the work; the store keeps the
 * record. Daemonless: every action runs to completion in the calling process, and
 * reconcile() repairs what a killed process left behind.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, hostname as osHostname } from 'node:os';
import { BadRequest, Conflict, NovaboxError, NotFound } from '../errors.js';
import { cgroupDriver, detectCgroups } from '../runtime/cgroups/index.js';
import type { CgroupDriver, CgroupLayout, CgroupLimits } from '../runtime/cgroups/types.js';
import type { ImageConfig } from '../images/store.js';
import { readImageById, readImageRef, layerDirs, ensureLayers, presentLayerDirs, type Image } from '../images/store.js';
import { ensureBusybox } from '../images/builtin.js';
import { ImageRepo, type ImageRecord } from '../images/records.js';
import {
  execInServer,
  imageInit,
  SERVER_INITS,
  SIGRTMIN_3,
  type ServerInit,
  freezeServer,
  isRunning,
  exitHook,
  novaboxCommand,
  logLine,
  recordedExit,
  settledExit,
  exitMeaning,
  removeServerFiles,
  startServer,
  stopServer,
  systemdCommand,
  thawServer,
  serverDirs,
  type ExecRequest,
  type ServerFacts,
  type StopStep,
  restoreServer,
} from '../runtime/server.js';
import { isSameProcess, readProcStart } from '../runtime/proc.js';
import { imageHasFile } from '../runtime/server-files.js';
import { volumeDir } from '../runtime/volumes.js';
import { ConsoleTail, lastLines, watchConsole } from '../runtime/console-tail.js';
import { allVethTraffic } from '../runtime/network/counters.js';
import { cpuSample, sample, toServerStats, type CpuSample, type ServerStats, type StatsSample, type StatsTarget } from './stats.js';
import { copyFiles as copyServerFiles, type CopyEnd, type ServerTree, type Skipped } from '../runtime/server-files.js';
import type { Store } from '../store/db.js';
import type { NewServer, Server } from '../store/servers.js';
import type { Flavor } from '../store/flavors.js';
import { nowIso } from '../store/time.js';
import { decideRestart, parseRestart } from './restart.js';
import { cgroupPathOf, paths } from '../util/paths.js';
import { rmTree } from '../util/rmtree.js';
import { trace } from '../util/trace.js';
import { testPause } from '../util/test-pause.js';
import { POWER_STATE, statusOf, type TaskState, type VmState } from '../model/states.js';
import { randomUuid } from '../util/random.js';
import { NetworkService } from './network.js';
import { ServerGroupService } from './server-groups.js';
import { novaAddresses, type NovaAddress } from './addresses.js';
import type { NetworkMode } from '../runtime/network/config.js';
import { boundMessage } from '../util/text.js';
import { IdmapService } from './idmap.js';
import { PortService } from './ports.js';
import { parseVolumeMount, VolumeService } from './volumes.js';
import { formatIdmap, releaseOwner, usernsMode, type IdmapLease, type UsernsMode } from '../runtime/userns/index.js';
import type { Idmap } from '../runtime/plan/spec.js';
import { decodeUserData, hasCloudInit, injectKey, parseResolv, SEED_TARGET, writeSeed } from './instance-data.js';
import { serverResolvText } from '../runtime/network/etc-files.js';
import { formatIp, gatewayOf } from '../runtime/network/ipam.js';
import type { Attachment } from '../runtime/network/bridge.js';

export interface CreateServerRequest {
  name: string;
  image: string;
  flavor: string;
  properties?: Record<string, string>;
  keyName?: string;
  /** default: the bridge network ('novabox') */
  network?: NetworkMode;
  /** Nova's v4-fixed-ip: this address on the bridge network (one server only) */
  fixedIp?: string;
  /** Nova's min_count/max_count: NAME-1 … NAME-N */
  count?: number;
  accessIpv4?: string;
  accessIpv6?: string;
  /** writable layer on a tmpfs inside the server, lost when it stops */
  ephemeral?: boolean;
  /** a server group to join (Nova's scheduler hint `group`) */
  group?: string;
  /** auto: a user namespace with an id range of its own; host: none. Default: config.json's "userns", else auto */
  userns?: UsernsMode | string;
  /** restart policy: no (default), always, on-failure[:N] (compute/restart.ts) */
  restart?: string;
  /** Nova's user_data: base64 (at most 65535 characters), given to the server in its NoCloud seed */
  userData?: string;
  /** Nova's config_drive: the seed also gets the openstack/latest/ layout */
  configDrive?: boolean;
  /** published ports, `[HOSTIP:]HOSTPORT:PORT[/tcp|udp]` each (compute/ports.ts) */
  publish?: string[];
  /** named volumes to attach, `NAME:/path[:ro]` each (compute/volumes.ts) */
  volumes?: string[];
  /** pid 1: 'novabox' (novabox-init) or 'systemd' (the image's); default: the image's os_init property or command */
  init?: string;
}

export interface ServerUsage {
  server: Server;
  /** undefined: the flavor is deleted and the server keeps no copy (older than the copy) */
  flavor: Flavor | undefined;
  hours: number;
  uptimeSeconds: number;
  endedAt: string | null;
}

import type { Caller, EventResult } from '../model/records.js';
export type { Caller } from '../model/records.js';

const NAME_MAX = 255;

/** Nova's event for a build (compute.manager's _do_build_and_run_instance). */
const BUILD_EVENT = 'compute__do_build_and_run_instance';

/** A server's create action and its build event, recorded with the server. */
interface BuildEvent {
  actionId: number;
  eventId: number;
}

export function checkServerName(name: string): void {
  if (name.length === 0 || name.length > NAME_MAX) {
    throw new BadRequest(`invalid server name: it must be 1 to ${NAME_MAX} characters long`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (/[\x00-\x1f\x7f]/.test(name)) throw new BadRequest('invalid server name: it contains control characters');
  if (name.trim() !== name) throw new BadRequest('invalid server name: it starts or ends with white space');
}

/** vcpus -> CPU quota, ram -> memory (swap off), extra specs quota:cpu_shares and pids limit. */
export function flavorLimits(f: Flavor): CgroupLimits {
  const limits: CgroupLimits = {
    memoryBytes: f.ramMiB * 1024 * 1024,
    swapOff: true,
    cpuQuotaUs: f.vcpus * 100_000,
    cpuPeriodUs: 100_000,
  };
  const shares = f.extraSpecs['quota:cpu_shares'];
  if (shares !== undefined) limits.cpuShares = Number(shares);
  const pids = f.extraSpecs['quota:pids_limit'] ?? f.extraSpecs['novabox:pids_limit'];
  limits.pidsMax = pids !== undefined ? Number(pids) : 4096;
  return limits;
}

/** pid 1 of a new server: --init if given, else what the image says (runtime/server.ts imageInit). */
export function serverInit(
  flag: string | undefined,
  properties: Record<string, string> | undefined,
  config: Pick<ImageConfig, 'cmd' | 'serverCmd'>,
): ServerInit {
  if (flag === undefined || flag === '') return imageInit(properties, config);
  if (!(SERVER_INITS as readonly string[]).includes(flag)) {
    throw new BadRequest(`invalid init "${flag}": it must be ${SERVER_INITS.join(' or ')}`);
  }
  return flag as ServerInit;
}

function stopSignalOf(config: ImageConfig): number {
  const name = config.stopSignal;
  if (!name) return constants.signals.SIGTERM;
  if (/^\d+$/.test(name)) return Number(name);
  if (name === 'SIGRTMIN+3') return 37;
  const sig = constants.signals[(name.startsWith('SIG') ? name : `SIG${name}`) as NodeJS.Signals];
  return sig ?? constants.signals.SIGTERM;
}

export class ComputeService {
  private driverCache: { layout: CgroupLayout; driver: CgroupDriver } | undefined;
  private networkCache: NetworkService | undefined;
  private idmapCache: IdmapService | undefined;
  private portCache: PortService | undefined;
  private volumeCache: VolumeService | undefined;

  constructor(readonly store: Store) {}

  get network(): NetworkService {
    this.networkCache ??= new NetworkService(this.store);
    return this.networkCache;
  }

  /** Servers' published ports (compute/ports.ts). */
  get ports(): PortService {
    this.portCache ??= new PortService(this.store, this.network);
    return this.portCache;
  }

  /** A server's volumes as `server show` prints them. */
  volumesField(serverId: string) {
    return this.volumes.ofServer(serverId).map((v) => ({ id: v.id, name: v.name, path: v.mountPath!, read_only: v.readOnly }));
  }

  /** Named volumes (compute/volumes.ts). */
  get volumes(): VolumeService {
    this.volumeCache ??= new VolumeService(this.store, (id) => {
      // a volume's copy (snapshot, clone): the server it is attached to, frozen while it runs
      const s = this.store.servers.get(id);
      if (!s) return undefined;
      const facts = this.facts(id);
      if (!facts || !isRunning(facts) || s.vmState === 'paused') return { task: s.taskState };
      return {
        task: s.taskState,
        root: `/proc/${facts.initPid}/root`,
        freeze: () => {
          freezeServer(facts, this.driver);
          return () => thawServer(facts, this.driver);
        },
        ...(s.vmState === 'active' ? { thaw: () => thawServer(facts, this.driver) } : {}),
      };
    });
    return this.volumeCache;
  }

  /** Servers' id ranges (compute/idmap.ts). */
  get idmaps(): IdmapService {
    this.idmapCache ??= new IdmapService(this.store);
    return this.idmapCache;
  }

  /** The id range a server runs in: its lease (taken if it has none), or none for --userns host. */
  private idmapFor(s: Pick<Server, 'id' | 'userns'>): Idmap | undefined {
    return s.userns === 'auto' ? this.idmaps.leaseFor(s.id) : undefined;
  }

  /** A server's id range as `server show` prints it: "uid 0 1065536 65536, gid 0 1065536 65536", "host", or "none" (auto, not taken yet). */
  idmapField(s: Pick<Server, 'id' | 'userns'>): string {
    if (s.userns === 'host') return 'host';
    const m = this.idmaps.idmapOf(s.id);
    return m ? formatIdmap(m) : 'none';
  }

  /** Give back a server's id range (delete, a failed build); the gc finds what this misses. */
  private releaseIdmap(id: string): void {
    try {
      this.idmaps.release(id);
    } catch {
      /* the next gc frees it */
    }
  }

  /** The attachment of a server on the bridge network (its lease allocated if it has none). */
  private attachmentOf(s: Server) {
    return s.network === 'novabox' ? this.network.attachmentFor('server', s.id) : undefined;
  }

  /** Give back a server's address and veth (delete; a failed build, as Nova deallocates). */
  private releaseNetwork(id: string): void {
    this.network.release(id);
  }

  /** A new driver when the host's cgroup layout changed (a v1 hierarchy mounted or gone while `serve` runs). */
  private get driver(): CgroupDriver {
    const layout = detectCgroups(); // the same object while the layout is unchanged
    if (this.driverCache?.layout !== layout) this.driverCache = { layout, driver: cgroupDriver(layout) };
    return this.driverCache.driver;
  }

  /** The local CLI: admin of its root, yet a locked server refuses it unless `overrideLock` (`--override-lock`). */
  localCaller(opts: { overrideLock?: boolean } = {}): Caller {
    return {
      projectId: this.store.getSetting('local_project_id')!,
      userId: this.store.getSetting('local_user_id')!,
      isAdmin: true,
      bypassLocks: opts.overrideLock === true,
    };
  }

  // ---- lookups ---------------------------------------------------------------------

  private imageFor(s: Pick<Server, 'imageName' | 'imageRef'>): { name: string; layerDirs: string[]; config: ImageConfig } {
    const image = readImageById(s.imageRef, s.imageName);
    if (!image) throw new NotFound(`image "${s.imageName}" of the server is gone`);
    return { name: image.name, layerDirs: layerDirs(image), config: image.config };
  }

  /** A server by name or id, reconciled with what is really running. */
  find(nameOrId: string, caller: Caller): Server {
    const s = this.store.servers.find(nameOrId, caller.isAdmin ? undefined : caller.projectId);
    const r = this.reconcile(s);
    if (r.deleted) throw new NotFound(`server "${nameOrId}" not found`); // an arrival taken back
    return r;
  }

  list(filters: Parameters<Store['servers']['list']>[0], caller: Caller): Server[] {
    const rows = this.store.servers.list({ ...filters, projectId: caller.isAdmin ? filters?.projectId : caller.projectId });
    // (an arrival reconcile took back is gone, unless deleted servers are listed too)
    const runtime = rows.length > 1 ? this.store.servers.runtimeOfAll() : undefined;
    const out = rows.map((s) => this.reconcile(s, runtime)).filter((r, i) => !r.deleted || rows[i]!.deleted);
    // a range whose taker was killed inside the transaction that records its server (a
    // create, an import, a receive) has a link and no record: the listing frees it
    this.idmaps.gc();
    return out;
  }

  facts(id: string): ServerFacts | undefined {
    return this.store.servers.getRuntime(id);
  }

  /**
   * Never trust a stored pid: a server recorded as running whose init is gone (kill -9,
   * OOM, host reboot) becomes SHUTOFF, CRASHED when it did not exit cleanly, with an
   * action that says so. A task left half done by a killed CLI is finished or failed.
   */
  reconcile(s: Server, runtime?: Map<string, ServerFacts>): Server {
    const facts = runtime ? runtime.get(s.id) : this.facts(s.id);
    const running = isRunning(facts);
    const taskStale = s.taskState !== null && s.taskOwnerPid !== null && !isSameProcess(s.taskOwnerPid, s.taskOwnerStart);
    if (taskStale && s.taskState === 'resize_finish') return this.dropArrival(s);
    if (taskStale) {
      return this.store.tx(() => {
        const cur = this.store.servers.get(s.id);
        if (!cur || cur.taskState === null) return cur ?? s;
        if (s.vmState === 'building') {
          // The creating CLI died: its container may run without a record. The cgroup path
          // is derived from the id, so whatever it started can be found and stopped.
          this.killUnrecorded(cur.id);
          this.ports.unpublish(cur.id);
          this.releaseNetwork(cur.id);
          this.releaseIdmap(cur.id);
          return this.fail(cur, `the command creating the server stopped during ${cur.taskState}`);
        }
        if (cur.taskState === 'image_snapshot' && running && cur.vmState === 'active') {
          // a snapshot killed while the server was frozen: thaw it (compute/snapshot.ts)
          try {
            this.driver.open(cgroupPathOf(cur.id)).thaw();
          } catch {
            /* not frozen, or gone */
          }
        }
        const vm: VmState = running ? (cur.vmState === 'paused' || cur.vmState === 'suspended' ? cur.vmState : 'active') : 'stopped';
        return this.store.servers.update(cur.id, {
          vmState: vm,
          taskState: null,
          powerState: running
            ? vm === 'paused'
              ? POWER_STATE.PAUSED
              : vm === 'suspended'
                ? POWER_STATE.SUSPENDED
                : POWER_STATE.RUNNING
            : POWER_STATE.SHUTDOWN,
          taskOwnerPid: null,
          taskOwnerStart: null,
        });
      });
    }
    if (s.taskState === null && s.vmState === 'error') {
      // ERROR sticks (os-resetState, a failed action) until an action moves the server; only
      // its power state follows reality, as Nova's power-state sync does
      const power = running ? POWER_STATE.RUNNING : s.powerState === POWER_STATE.RUNNING ? POWER_STATE.SHUTDOWN : s.powerState;
      if (power === s.powerState) return s;
      return this.store.tx(() => {
        const cur = this.store.servers.get(s.id);
        if (!cur || cur.taskState !== null || cur.vmState !== 'error') return cur ?? s;
        if (!running && this.store.servers.getRuntime(cur.id)) {
          this.store.servers.clearRuntime(cur.id);
          try {
            this.driver.open(cgroupPathOf(cur.id)).remove();
          } catch {
            /* retried next time */
          }
          if (cur.network === 'novabox') this.detachQuietly(cur.id);
          this.ports.unpublish(cur.id);
        }
        return this.store.servers.update(cur.id, { powerState: power });
      });
    }
    if (s.taskState === null && (s.vmState === 'active' || s.vmState === 'paused' || s.vmState === 'suspended') && !running) {
      const { crashed, how } = exitMeaning(s.init, settledExit(s.id, facts));
      return this.store.tx(() => {
        const cur = this.store.servers.get(s.id);
        if (!cur || cur.taskState !== null || !(cur.vmState === 'active' || cur.vmState === 'paused' || cur.vmState === 'suspended'))
          return cur ?? s;
        const a = this.store.actions.start(cur.id, 'stop', {
          userId: cur.userId,
          projectId: cur.projectId,
          message: `server stopped by itself: ${how}`,
        });
        this.store.actions.event(a.id, 'compute_power_state_sync')(crashed ? 'Error' : 'Success', crashed ? how : undefined);
        if (crashed) this.store.actions.setMessage(a.id, `server stopped by itself: ${how}`);
        this.store.servers.clearRuntime(cur.id);
        logLine(cur.id, `server stopped by itself: ${how}`);
        try {
          this.driver.open(cgroupPathOf(cur.id)).remove();
        } catch {
          /* retried next time */
        }
        if (cur.network === 'novabox') this.detachQuietly(cur.id);
        this.ports.unpublish(cur.id);
        return this.store.servers.update(cur.id, {
          vmState: 'stopped',
          powerState: crashed ? POWER_STATE.CRASHED : POWER_STATE.SHUTDOWN,
        });
      });
    }
    return s;
  }

  /** The host end of a stopped server's veth: the kernel removes it with the namespace, but asynchronously. */
  private detachQuietly(id: string): void {
    try {
      this.network.detach(id);
    } catch {
      /* gone already, or retried by doctor */
    }
  }

  /**
   * `server receive`: a migrated server is held (task resize_finish, owned by the receiver)
   * from its record's first write (import.ts) until the sender's commit; a receiver that
   * dies meanwhile (kill -9) leaves it for reconcile to take back (dropArrival), while the
   * sender, which never heard `committed`, starts its own copy again. This starts it
   * while it is held.
   */
  async startArrival(id: string, caller: Caller): Promise<Server> {
    return this.bringUpArrival(id, caller, (s) => this.boot(s));
  }

  /**
   * Live migration: the arrival's tree restored from the source's CRIU images (`images`,
   * the final dump's directory; `stdio`: pid 1's log pipe as /proc named it there) in
   * place of startArrival's boot. The server stays held until the commit, as an arrival.
   */
  async restoreArrival(id: string, caller: Caller, images: string, stdio?: string): Promise<Server> {
    return this.bringUpArrival(id, caller, async (s) => {
      // its published ports, for the address it has here, before its sockets listen again (as a boot's)
      this.ports.publish(s.id);
      try {
        await this.restoreTree(s, images, stdio);
      } catch (err) {
        this.ports.unpublish(s.id);
        throw err;
      }
    });
  }

  /** An arrival this process holds, brought up by `up` under a start action: ACTIVE, or SHUTOFF and the error. */
  private async bringUpArrival(id: string, caller: Caller, up: (s: Server) => Promise<unknown>): Promise<Server> {
    const s = this.store.servers.get(id);
    if (!s || s.taskState !== 'resize_finish' || s.taskOwnerPid !== process.pid) {
      throw new Conflict(`server ${id} is not an arrival this process holds`);
    }
    const a = this.store.actions.start(id, 'start', { requestId: caller.requestId, userId: caller.userId, projectId: caller.projectId });
    const ev = this.store.actions.event(a.id, 'compute_start_instance');
    try {
      await up(s);
      ev('Success');
      return this.store.servers.update(id, { vmState: 'active', powerState: POWER_STATE.RUNNING, fault: null });
    } catch (err) {
      ev('Error', (err as Error).message);
      this.store.servers.update(id, { vmState: 'stopped', powerState: POWER_STATE.SHUTDOWN });
      throw err;
    }
  }

  /**
   * Live migration's source taken back: the server its migrate holds (task migrating), whose
   * tree the final dump ended, restored here from that dump, once its old monitor is gone.
   */
  async restoreClaimed(id: string, images: string, stdio?: string): Promise<Server> {
    const s = this.store.servers.get(id);
    if (!s || s.taskState !== 'migrating' || s.taskOwnerPid !== process.pid)
      throw new Conflict(`server ${id} is not claimed by this process`);
    const f = this.store.servers.getRuntime(id);
    // a tree the dump did not end (it failed before) runs on: nothing to restore
    if (f && isSameProcess(f.initPid, f.initStart)) return s;
    for (let i = 0; f && i < 100 && isSameProcess(f.monitorPid, f.monitorStart); i++) await new Promise((r) => setTimeout(r, 50));
    await this.restoreTree(s, images, stdio);
    return this.store.servers.update(id, { vmState: 'active', powerState: POWER_STATE.RUNNING, fault: null });
  }

  private async restoreTree(s: Server, images: string, stdio: string | undefined): Promise<void> {
    const image = this.imageFor(s);
    const attachment = this.attachmentOf(s);
    // the range the dump's user namespace has: on the target the one the arrival leased
    // (receive.ts leases the source's), on the source its own
    const idmap = this.idmapFor(s);
    const facts = await restoreServer(
      {
        id: s.id,
        hostname: hostnameOf(s.name),
        image,
        limits: flavorLimits(this.flavorOf(s)),
        onExit: this.onExitOf(s),
        attachment,
        idmap,
        // its seed written here as a start writes it (this host's address in its network config), bound in its place
        seed: this.instanceData(s, image.layerDirs, attachment, idmap),
      },
      this.driver,
      // its volumes' directories here: directory volumes only (a migration refuses sized ones),
      // their files already in its ids (the arrival's import shifted them; the source's are its own)
      { images, stdio, volumes: this.volumes.ofServer(s.id).map((v) => ({ id: v.id, source: volumeDir(v.id) })) },
    );
    // its veth is a new one: loopback sources and hairpin for its published ports again
    this.ports.started(s.id);
    this.store.servers.setRuntime(s.id, facts);
    logLine(s.id, "server restored from a live migration's dump (criu restore)");
  }

  /** The sender committed: the arrived server is this host's. */
  settleArrival(id: string): Server {
    return this.store.servers.update(id, { taskState: null, taskOwnerPid: null, taskOwnerStart: null });
  }

  /**
   * A server that arrived by `server migrate` and whose receiver died before the sender
   * committed: the sender runs its own copy again, so this one goes (container, cgroup,
   * address, ports, files, volumes, id range), and its record goes back to what it was before the
   * arrival: none, or the deleted record of its earlier stay here (without the actions of
   * the arrival). The image it may have brought stays.
   */
  private dropArrival(s: Server): Server {
    const cur = this.store.tx(() => {
      const c = this.store.servers.get(s.id);
      if (!c || c.taskState !== 'resize_finish' || c.taskOwnerPid === null || isSameProcess(c.taskOwnerPid, c.taskOwnerStart)) return c;
      return this.store.servers.update(c.id, { taskState: 'deleting', ...this.owner() });
    });
    if (!cur || cur.taskState !== 'deleting' || cur.taskOwnerPid !== process.pid) return cur ?? { ...s, deleted: true };
    this.halt(cur, 0, true);
    try {
      this.driver.open(cgroupPathOf(cur.id)).remove();
    } catch {
      /* nothing there */
    }
    this.store.servers.clearRuntime(cur.id);
    this.releaseNetwork(cur.id);
    this.ports.forget(cur.id);
    // the volumes it brought go too (the sender keeps its own copies): an arrival's volumes
    // are all its import's, which refused any of their names or ids already here
    const brought = this.volumes.ofServer(cur.id);
    this.volumes.detachAll(cur.id);
    for (const v of brought) {
      try {
        this.volumes.delete(v.id);
      } catch {
        /* snapshotted meanwhile: a volume of this host's now, left as it is */
      }
    }
    removeServerFiles(cur.id);
    this.idmaps.release(cur.id);
    return this.store.tx(() => {
      const actions = this.store.actions.list(cur.id); // newest first
      const arrival = actions.find((a) => a.action === 'migrate');
      const earlier = arrival ? actions.filter((a) => a.id < arrival.id) : [];
      if (!arrival || earlier.length === 0) {
        this.store.servers.remove(cur.id);
        return { ...cur, deleted: true, vmState: 'deleted' as VmState, taskState: null };
      }
      // it had been here before and left: its deleted record, as it was
      this.store.actions.removeFrom(cur.id, arrival.id);
      return this.store.servers.update(cur.id, {
        deleted: true,
        vmState: 'deleted',
        taskState: null,
        powerState: POWER_STATE.NOSTATE,
        terminatedAt: earlier[0]!.startTime,
        taskOwnerPid: null,
        taskOwnerStart: null,
      });
    });
  }

  private killUnrecorded(id: string): void {
    if (this.store.servers.getRuntime(id)) return;
    try {
      this.driver.open(cgroupPathOf(id)).remove(); // kills what is inside, then removes it
    } catch {
      /* nothing there */
    }
  }

  private fail(s: Server, message: string): Server {
    return this.store.servers.update(s.id, {
      vmState: 'error',
      taskState: null,
      powerState: isRunning(this.facts(s.id)) ? POWER_STATE.RUNNING : POWER_STATE.NOSTATE,
      fault: { code: 500, message: boundMessage(message), created: nowIso() },
      taskOwnerPid: null,
      taskOwnerStart: null,
    });
  }

  private owner() {
    return { taskOwnerPid: process.pid, taskOwnerStart: readProcStart(process.pid) ?? 0 };
  }

  /** Nova: a locked server refuses state changes, except from an admin (the CLI only with --override-lock). */
  private checkLock(s: Server, caller: Caller): void {
    if (!s.locked) return;
    if (caller.isAdmin && caller.bypassLocks === false) {
      throw new Conflict(`server "${s.name}" is locked: unlock it first ("novabox server unlock ${s.name}") or pass --override-lock`);
    }
    if (!caller.isAdmin) {
      throw new Conflict(`Instance ${s.id} is locked`, { hint: `unlock it first ("novabox server unlock ${s.name}")` });
    }
  }

  // ---- create ----------------------------------------------------------------------

  async create(req: CreateServerRequest, caller: Caller): Promise<Server[]> {
    return (await this.createRecorded(req, caller)).started;
  }

  /**
   * Nova's asynchronous create: the records exist (BUILD) when this returns; `started`
   * settles when every container runs or failed (ERROR with a fault). The API answers
   * 202 on the records and lets `started` finish in the background.
   */
  async createRecorded(req: CreateServerRequest, caller: Caller): Promise<{ servers: Server[]; started: Promise<Server[]> }> {
    checkServerName(req.name);
    const count = req.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 1000) throw new BadRequest('invalid count: expected 1 to 1000 servers');
    const found = await this.imageToBoot(req.image);
    const flavor = this.store.flavors.get(req.flavor);
    if (flavor.disabled) throw new BadRequest(`flavor "${flavor.name}" is disabled`);
    checkImageFits(found.row, flavor);
    const image = found.image ?? {
      id: found.row!.id,
      name: found.row!.name,
      layers: [],
      config: found.row!.config,
      created: found.row!.createdAt,
    };
    for (const [k, v] of Object.entries(req.properties ?? {})) checkProperty(k, v);
    const userData = decodeUserData(req.userData);
    const keyData = req.keyName === undefined || req.keyName === null ? null : this.publicKeyOf(req.keyName, caller);
    if (keyData && req.ephemeral && image.layers.length && !hasCloudInit(presentLayerDirs(image)))
      throw new BadRequest(
        `cannot give key pair "${req.keyName}" to an ephemeral server of image "${image.name}": without cloud-init novabox writes the key into the writable layer before the first boot, and an ephemeral one is made at each start`,
      );
    const restart = req.restart ?? 'no';
    parseRestart(restart);
    const network = req.network ?? 'novabox';
    if (network === 'novabox') this.network.check();
    const userns = usernsMode(req.userns);
    const init = serverInit(req.init, found.row?.properties, image.config);
    if (init === 'systemd' && userns === 'host') {
      throw new BadRequest(
        "systemd as pid 1 needs the server's own user namespace: --userns host would give it root and every capability over the host (drop --userns host, or --init novabox)",
      );
    }
    if (init === 'systemd' && image.layers.length) {
      const boot = systemdCommand(image.config)[0]!;
      if (!imageHasFile(presentLayerDirs(image), boot)) {
        throw new BadRequest(
          `image "${image.name}" has no init to boot: ${boot} is not in it (a system container runs the image's own systemd; --init novabox runs novabox's)`,
        );
      }
    }
    if (req.fixedIp !== undefined) {
      if (network !== 'novabox')
        throw new BadRequest(`a fixed IP needs the bridge network "${this.network.name}", not --network ${network}`);
      if (count !== 1) throw new BadRequest('a fixed IP can be given to one server only, not with --min/--max');
      this.network.checkFixedIp(req.fixedIp);
    }
    const ports = this.ports.parse(req.publish ?? [], { network, count });
    const volumes = this.volumes.resolve((req.volumes ?? []).map(parseVolumeMount), { count });
    const groups = req.group !== undefined ? new ServerGroupService(this.store) : undefined;
    const noHost = groups?.placement(req.group!, count, caller);
    const names = count === 1 ? [req.name] : Array.from({ length: count }, (_, i) => `${req.name}-${i + 1}`);
    const now = nowIso();
    const ids = names.map(() => randomUuid());
    const builds = new Map<string, BuildEvent>();
    const seen: IdmapLease[] = []; // the lease links read when the last range was taken
    const rows: Server[] = this.withLeasesUndone(ids, () =>
      this.store.tx(() =>
        names.map((name, i) => {
          const s: NewServer = {
            id: ids[i]!,
            name,
            projectId: caller.projectId,
            userId: caller.userId,
            imageRef: image.id ?? image.name,
            imageName: image.name,
            flavorId: flavor.id,
            flavor,
            vmState: 'building',
            taskState: 'spawning',
            powerState: POWER_STATE.NOSTATE,
            metadata: { ...(req.properties ?? {}) },
            keyName: req.keyName ?? null,
            keyData,
            userData: userData ? userData.toString('base64') : null,
            configDrive: Boolean(req.configDrive),
            accessIpv4: req.accessIpv4 ?? '',
            accessIpv6: req.accessIpv6 ?? '',
            locked: false,
            lockedBy: null,
            host: hostName(),
            fault: null,
            ephemeral: Boolean(req.ephemeral),
            network,
            userns,
            restart,
            restartCount: 0,
            init,
            createdAt: now,
            updatedAt: now,
            launchedAt: null,
            terminatedAt: null,
            ...this.owner(),
          };
          const row = this.store.servers.insert(s);
          if (network === 'novabox' && noHost === undefined) this.network.allocate('server', s.id, req.fixedIp);
          this.ports.record(s.id, ports);
          for (const v of volumes) this.volumes.attachIn(s.id, v.row.id, v.mount.path, v.mount.readOnly);
          if (userns === 'auto' && noHost === undefined && found.unbootable === undefined) this.idmaps.leaseFor(s.id, seen);
          if (groups && noHost === undefined) groups.join(req.group!, s.id);
          const a = this.store.actions.start(s.id, 'create', {
            requestId: caller.requestId,
            userId: caller.userId,
            projectId: caller.projectId,
          });
          // the build's event in the same commit (one write lock per create, not one more per server)
          builds.set(s.id, { actionId: a.id, eventId: this.store.actions.startEvent(a.id, BUILD_EVENT) });
          return row;
        }),
      ),
    );
    // the ranges of takers that died before recording their server, from the links the
    // last lease read (a create that finds none left frees them first: IdmapService.allocate)
    if (seen.length) {
      try {
        this.idmaps.gc(seen);
      } catch {
        /* the next `server list` frees them */
      }
    }
    const limits = flavorLimits(flavor);
    if (found.unbootable !== undefined || noHost !== undefined) {
      // Nova accepts the request; the build fails: every server ERROR with the reason as its fault
      const why = (noHost ?? found.unbootable)!;
      const started = new Promise<void>((r) => setImmediate(r)).then(() => rows.map((s) => this.failBuild(s, why, builds.get(s.id))));
      return { servers: rows, started };
    }
    await ensureLayers(image);
    const config = { name: image.name, layerDirs: layerDirs(image), config: image.config };
    // Containers are independent: start them concurrently (the kernel work overlaps).
    // Started on the next turn of the event loop: an API caller answers 202 first.
    const started = new Promise<void>((r) => setImmediate(r)).then(() =>
      Promise.all(rows.map((s) => this.spawn(s, config, limits, builds.get(s.id)))),
    );
    return { servers: rows, started };
  }

  /**
   * The image a create or rebuild names (an id, else an unambiguous name), published for the
   * runtime; or, for an image Glance holds but novabox cannot boot (uploaded data that is no
   * root filesystem), its record and why.
   */
  private async imageToBoot(ref: string): Promise<{ image?: Image; row?: ImageRecord; unbootable?: string }> {
    const repo = new ImageRepo(this.store.db, this.store.tx);
    let row = UUID_RE.test(ref) ? repo.get(ref) : undefined;
    if (row && row.status !== 'active') throw new NotFound(`image "${ref}" not found`);
    if (!row) {
      const live = repo.allByName(ref).filter((i) => i.status === 'active');
      if (live.length > 1)
        throw new Conflict(`more than one image is named ${JSON.stringify(ref)}: ${live.map((i) => i.id).join(', ')}; use the id`);
      row = live[0];
    }
    if (row?.properties.novabox_source === 'data') {
      const why = row.properties.novabox_unbootable || 'it is not a root filesystem';
      return {
        row,
        unbootable: `novabox cannot boot this image: its data (disk_format ${row.diskFormat ?? 'raw'}) is not a root filesystem: ${why}`,
      };
    }
    let image = row ? readImageById(row.id, row.name) : readImageRef(ref);
    // the built-in image, built on first use (its builder loads tar, crypto and child_process: only then)
    if (!image && ref === 'busybox') image = await ensureBusybox();
    if (!image) throw new NotFound(`image ${JSON.stringify(ref)} not found`);
    row ??= image.id ? repo.get(image.id) : undefined;
    return { image, row };
  }

  /** fn, or on its failure the id range links taken for these servers given back (their records rolled back with fn's transaction). */
  private withLeasesUndone<T>(ids: string[], fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      for (const id of ids) {
        try {
          releaseOwner(id);
        } catch {
          /* the next gc frees it */
        }
      }
      throw err;
    }
  }

  /** A build that cannot start (the image does not boot): ERROR with Nova's fault, network and id range given back. */
  private failBuild(s: Server, why: string, build: BuildEvent | undefined): Server {
    this.endBuild(build, 'Error', why);
    logLine(s.id, `server failed to build: ${why}`);
    try {
      this.releaseNetwork(s.id);
    } catch {
      /* doctor finds it */
    }
    this.releaseIdmap(s.id);
    return this.fail(s, why);
  }

  /** A build's event ended on its own (a failed build: the server's ERROR follows in its own write). */
  private endBuild(build: BuildEvent | undefined, result: EventResult, traceback?: string): void {
    if (build) this.store.tx(() => this.store.actions.finishEvent(build.actionId, build.eventId, result, traceback));
  }

  private async spawn(
    s: Server,
    image: { name: string; layerDirs: string[]; config: ImageConfig },
    limits: CgroupLimits,
    build: BuildEvent | undefined,
  ): Promise<Server> {
    try {
      mkdirSync(serverDirs(s.id).dir, { recursive: true, mode: 0o700 });
      logLine(s.id, 'server created');
      trace('create recorded');
      testPause('create-recorded'); // its lease recorded, no veth, no container yet
      const attachment = this.attachmentOf(s);
      const idmap = this.idmapFor(s);
      this.ports.publish(s.id);
      let facts: ServerFacts;
      try {
        facts = await startServer(
          {
            id: s.id,
            hostname: hostnameOf(s.name),
            image,
            limits,
            network: s.network,
            ephemeral: this.ephemeralOf(s),
            attachment,
            idmap,
            onExit: this.onExitOf(s),
            seed: this.instanceData(s, image.layerDirs, attachment, idmap),
            volumes: this.volumes.mountsFor(s.id, idmap),
            init: s.init,
          },
          this.driver,
        );
      } finally {
        this.volumes.unstage(s.id); // sized volumes: the server's mount namespace holds them now
      }
      this.ports.started(s.id);
      trace('server started');
      testPause('server-started'); // the container runs, its record still says BUILD
      logLine(s.id, 'server started');
      // ACTIVE, its runtime facts and the build's event's end: one commit
      return this.store.tx(() => {
        if (build) this.store.actions.finishEvent(build.actionId, build.eventId, 'Success');
        this.store.servers.setRuntime(s.id, facts);
        return this.store.servers.update(s.id, {
          vmState: 'active',
          taskState: null,
          powerState: POWER_STATE.RUNNING,
          launchedAt: nowIso(),
          taskOwnerPid: null,
          taskOwnerStart: null,
        });
      });
    } catch (err) {
      this.endBuild(build, 'Error', (err as Error).message);
      logLine(s.id, `server failed to start: ${(err as Error).message}`);
      this.ports.unpublish(s.id);
      try {
        this.releaseNetwork(s.id);
      } catch {
        /* doctor finds it */
      }
      this.releaseIdmap(s.id);
      return this.fail(s, (err as Error).message);
    }
  }

  // ---- power ---------------------------------------------------------------------

  /**
   * The claim and its action record in one transaction: one commit (WAL frames, the write
   * lock) per command instead of two, and no claim left without its action by a kill between.
   */
  private begin(s: Server, caller: Caller, action: string, from: VmState[], task: TaskState, opts: { force?: boolean } = {}) {
    this.checkLock(s, caller);
    return this.store.tx(() => {
      const cur = this.store.servers.transition(s.id, {
        from,
        action,
        to: { taskState: task, ...this.owner() },
        allowTask: opts.force,
      });
      const a = this.store.actions.start(s.id, action, { requestId: caller.requestId, userId: caller.userId, projectId: caller.projectId });
      return { cur, a };
    });
  }

  private finish(id: string, patch: Partial<Server>): Server {
    return this.store.servers.update(id, { ...patch, taskState: null, taskOwnerPid: null, taskOwnerStart: null });
  }

  /** Start an existing server's container (its upper layer kept) and record the facts. */
  private async boot(s: Server): Promise<void> {
    const flavor = this.flavorOf(s);
    const image = readImageById(s.imageRef, s.imageName);
    if (image) await ensureLayers(image);
    const booted = this.imageFor(s);
    const attachment = this.attachmentOf(s);
    const idmap = this.idmapFor(s);
    this.ports.publish(s.id);
    let facts: ServerFacts;
    try {
      facts = await startServer(
        {
          id: s.id,
          hostname: hostnameOf(s.name),
          image: booted,
          limits: flavorLimits(flavor),
          network: s.network,
          ephemeral: this.ephemeralOf(s),
          attachment,
          idmap,
          onExit: this.onExitOf(s),
          seed: this.instanceData(s, booted.layerDirs, attachment, idmap),
          volumes: this.volumes.mountsFor(s.id, idmap),
          init: s.init,
        },
        this.driver,
      );
    } catch (err) {
      this.ports.unpublish(s.id);
      throw err;
    } finally {
      this.volumes.unstage(s.id); // sized volumes: the server's mount namespace holds them now
    }
    this.ports.started(s.id);
    this.store.servers.setRuntime(s.id, facts);
    logLine(s.id, 'server started');
  }

  /** key_name's public key (the caller's keypair), copied into the server's record as Nova does */
  private publicKeyOf(keyName: string, caller: Caller): string {
    try {
      return this.store.keypairs.get(caller.userId, keyName).publicKey;
    } catch (err) {
      if (err instanceof NotFound) throw new BadRequest(`Invalid key_name provided: there is no key pair "${keyName}"`, { cause: err });
      throw err;
    }
  }

  /**
   * Before each boot: the server's NoCloud seed written (compute/instance-data.ts) when its
   * image has cloud-init or it was given instance data (a key, user data, a config drive);
   * a server with neither gets no seed and no mount. On its first boot, for an image
   * without cloud-init, key_name's public key goes into root's authorized_keys by novabox
   * (a marker in the server's directory says it was done; a rebuild, whose writable layer
   * is new, removes it). Returns the bind of the seed, if any.
   */
  private instanceData(s: Server, layers: string[], attachment: Attachment | undefined, idmap: Idmap | undefined) {
    trace('instance data');
    const d = serverDirs(s.id);
    const cloudInit = hasCloudInit(layers);
    if (!cloudInit && s.userData === null && s.keyData === null && !s.configDrive) {
      rmTree(d.seed); // a rebuild onto an image without cloud-init
      return undefined;
    }
    const resolv = attachment ? parseResolv(serverResolvText()) : undefined;
    writeSeed(
      d.seed,
      {
        id: s.id,
        name: s.name,
        hostname: hostnameOf(s.name),
        metadata: s.metadata,
        keyName: s.keyName,
        publicKey: s.keyData,
        userData: s.userData === null ? undefined : Buffer.from(s.userData, 'base64'),
        configDrive: s.configDrive,
        network:
          attachment && resolv
            ? {
                address: formatIp(attachment.address),
                prefixLen: attachment.subnet.prefixLen,
                gateway: formatIp(gatewayOf(attachment.subnet)),
                mac: attachment.mac,
                mtu: attachment.mtu,
                ...resolv,
              }
            : undefined,
      },
      idmap,
    );
    const marker = join(d.dir, 'key-injected');
    if (s.keyData && !s.ephemeral && !cloudInit && !existsSync(marker)) {
      mkdirSync(d.upper, { recursive: true, mode: 0o755 });
      if (idmap) chownSync(d.upper, idmap.uidBase, idmap.gidBase);
      mkdirSync(paths.tmp(), { recursive: true, mode: 0o700 });
      injectKey({ upper: d.upper, lowers: layers, idmap }, s.keyData, paths.tmp());
      writeFileSync(marker, '');
    }
    trace('instance data written');
    return { source: d.seed, target: SEED_TARGET };
  }

  /** A server with a restart policy: its monitor starts `novabox server _exited` after the init's exit. */
  private onExitOf(s: Server) {
    // systemd servers always: a `reboot` inside starts them again (afterExit)
    return (s.restart && s.restart !== 'no') || s.init === 'systemd' ? exitHook(s.id) : undefined;
  }

  /** a novabox command line for another process (the boot unit) */
  novaboxCommand(): string[] {
    return novaboxCommand();
  }

  /** `server set --restart`: from the server's next start on (its monitor has its plan). */
  setRestart(nameOrId: string, restart: string, caller: Caller): Server {
    parseRestart(restart);
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    return this.store.servers.update(s.id, { restart, restartCount: 0 });
  }

  /**
   * `novabox server _exited <id>`, started by the server's monitor once its init was
   * reaped (the plan's on_exit): record the exit (reconcile: a stop action "stopped by
   * itself" with the status), then apply the restart policy: after the backoff, a
   * `restart` action with the exit status and the count, and the start. Nothing when a
   * stop, reboot or delete caused the exit (its task, or its stop action, is there).
   */
  async afterExit(id: string): Promise<Server | undefined> {
    const row = this.store.servers.get(id);
    if (!row) return undefined;
    const s = this.reconcile(row);
    if (s.taskState !== null || s.vmState !== 'stopped') return s;
    const last = this.store.actions.latest(s.id);
    if (last?.action !== 'stop' || !last.message?.startsWith('server stopped by itself')) return s;
    const meaning = exitMeaning(s.init, recordedExit(s.id));
    // `reboot` inside a system container: started again, whatever the restart policy (LXC's way)
    if (meaning.reboot) return this.restartNow(s.id, 'reboot from inside the server (systemd rebooted)', s.restartCount);
    const failed = meaning.crashed;
    // how long it ran: since the last action that started it
    const began = this.store.actions.list(s.id).find((x) => ['create', 'start', 'restart', 'reboot', 'rebuild'].includes(x.action)); // newest first
    const ran = began ? Date.now() - Date.parse(began.startTime) : 0;
    const d = decideRestart(parseRestart(s.restart), failed, s.restartCount, ran);
    if (!d.restart) {
      logLine(s.id, `not restarted: ${d.reason}`);
      return s;
    }
    await new Promise((r) => setTimeout(r, d.delayMs));
    const how = last.message.slice('server stopped by itself: '.length);
    return this.restartNow(s.id, `restart ${d.count}${this.capOf(s)} after: ${how}`, d.count);
  }

  private capOf(s: Server): string {
    const p = parseRestart(s.restart);
    return p.mode === 'on-failure' && p.max !== undefined ? ` of ${p.max}` : '';
  }

  /** A `restart` action (its message says why) and the start; refused quietly if the server moved meanwhile. */
  private async restartNow(id: string, message: string, count: number): Promise<Server | undefined> {
    const s = this.store.servers.get(id);
    if (!s) return undefined;
    const caller = { ...this.localCaller({ overrideLock: true }), userId: s.userId, projectId: s.projectId };
    let ev: ReturnType<Store['actions']['event']>;
    try {
      // the claim, its action (why), its event and the count in one commit, the outcome in another
      ev = this.store.tx(() => {
        const { a } = this.begin(s, caller, 'restart', ['stopped'], 'powering-on');
        this.store.actions.setMessage(a.id, message);
        this.store.servers.update(id, { restartCount: count });
        return this.store.actions.event(a.id, 'compute_start_instance');
      });
    } catch {
      return s; // started, stopped for good or deleted meanwhile
    }
    logLine(id, message);
    try {
      await this.boot({ ...s, restartCount: count });
      return this.store.tx(() => {
        ev('Success');
        return this.finish(id, { vmState: 'active', powerState: POWER_STATE.RUNNING, fault: null });
      });
    } catch (err) {
      ev('Error', (err as Error).message);
      logLine(id, `restart failed: ${(err as Error).message}`);
      return this.finish(id, { vmState: 'stopped', powerState: POWER_STATE.SHUTDOWN });
    }
  }

  /**
   * `novabox autostart run` (the boot unit): every server that was running when the host
   * went down (reconcile records it stopped: its processes are gone) and whose policy is
   * always or on-failure is started again, `parallel` at a time.
   */
  async autostart(parallel: number): Promise<{ started: string[]; failed: string[] }> {
    const wanted = this.store.servers
      .list({})
      .filter((r) => r.restart !== 'no' && r.taskState === null && ['active', 'paused', 'suspended'].includes(r.vmState))
      .map((r) => this.reconcile(r))
      .filter((s) => s.vmState === 'stopped' && s.taskState === null);
    const started: string[] = [];
    const failed: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < wanted.length) {
        const s = wanted[next++]!;
        const r = await this.restartNow(s.id, 'restart after the host rebooted (autostart)', 0);
        (r?.vmState === 'active' ? started : failed).push(s.name);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, wanted.length)) }, worker));
    return { started, failed };
  }

  /** An ephemeral server's tmpfs holds at most the flavor's disk. */
  private ephemeralOf(s: Server): { sizeBytes: number } | undefined {
    if (!s.ephemeral) return undefined;
    const disk = this.flavorOf(s).diskGiB;
    return { sizeBytes: Math.max(1, disk) * 1024 ** 3 };
  }

  /**
   * Nova rebuild: the same server (id, name, metadata, key, addresses) on a fresh
   * writable layer over another (or the same) image. From ACTIVE it ends ACTIVE, from
   * SHUTOFF it ends SHUTOFF; an instance action `rebuild` records it.
   */
  async rebuild(nameOrId: string, imageRef: string, caller: Caller, opts: { timeoutMs?: number } = {}): Promise<Server> {
    const s = this.find(nameOrId, caller);
    const found = await this.imageToBoot(imageRef);
    if (found.unbootable !== undefined) throw new BadRequest(found.unbootable);
    checkImageFits(found.row, this.flavorOf(s));
    const image = found.image!;
    // pid 1 follows the new image (as at create without --init)
    const init = imageInit(found.row?.properties, image.config);
    if (init === 'systemd' && s.userns === 'host') {
      throw new BadRequest(
        `image "${image.name}" boots systemd, which needs the server's own user namespace; this server has --userns host`,
      );
    }
    const { a } = this.begin(s, caller, 'rebuild', ['active', 'stopped', 'error'], 'rebuilding');
    const ev = this.store.actions.event(a.id, 'compute_rebuild_instance');
    // Nova: a rebuild ends ACTIVE, except from SHUTOFF (from ERROR too: the server is booted)
    const wasRunning = s.vmState !== 'stopped';
    try {
      this.halt(s, opts.timeoutMs ?? 10_000, false);
      const d = serverDirs(s.id);
      rmTree(d.upper);
      rmTree(d.work);
      rmSync(join(d.dir, 'key-injected'), { force: true });
      const cur = this.store.servers.update(s.id, {
        imageRef: image.id ?? image.name,
        imageName: image.name,
        init,
        taskState: 'rebuild_spawning',
      });
      logLine(s.id, `server rebuilt from image ${image.name}`);
      if (wasRunning) await this.boot(cur);
      ev('Success');
      return this.finish(
        s.id,
        wasRunning
          ? { vmState: 'active', powerState: POWER_STATE.RUNNING, fault: null }
          : { vmState: 'stopped', powerState: POWER_STATE.SHUTDOWN, fault: null },
      );
    } catch (err) {
      ev('Error', (err as Error).message);
      this.fail(s, `rebuild failed: ${(err as Error).message}`);
      throw err;
    }
  }

  async start(nameOrId: string, caller: Caller): Promise<Server> {
    const s = this.find(nameOrId, caller);
    // the claim, its action and event in one commit, the outcome in another
    const ev = this.store.tx(() => {
      const { a } = this.begin(s, caller, 'start', ['stopped'], 'powering-on');
      return this.store.actions.event(a.id, 'compute_start_instance');
    });
    try {
      await this.boot(s);
      return this.store.tx(() => {
        ev('Success');
        return this.finish(s.id, { vmState: 'active', powerState: POWER_STATE.RUNNING, fault: null });
      });
    } catch (err) {
      ev('Error', (err as Error).message);
      this.finish(s.id, { vmState: 'stopped', powerState: POWER_STATE.SHUTDOWN });
      throw err;
    }
  }

  async stop(nameOrId: string, caller: Caller, opts: { timeoutMs?: number } = {}): Promise<{ server: Server; step: StopStep }> {
    const s = this.find(nameOrId, caller);
    const ev = this.store.tx(() => {
      const { a } = this.begin(s, caller, 'stop', ['active', 'error'], 'powering-off');
      return this.store.actions.event(a.id, 'compute_stop_instance');
    });
    const step = this.halt(s, opts.timeoutMs ?? 10_000, false);
    const server = this.store.tx(() => {
      ev('Success');
      return this.finish(s.id, { vmState: 'stopped', powerState: POWER_STATE.SHUTDOWN });
    });
    return { server, step };
  }

  /** Stop the container if it runs; returns how it ended. */
  private halt(s: Server, timeoutMs: number, force: boolean): StopStep {
    const facts = this.facts(s.id);
    if (!facts) return 'not running';
    const step = stopServer(facts, this.driver, {
      timeoutMs,
      force,
      // systemd halts on SIGRTMIN+3 (its shutdown, then exit: a container has no power to cut)
      signal: s.init === 'systemd' ? SIGRTMIN_3 : stopSignalOf(this.imageForSafe(s)?.config ?? ({} as ImageConfig)),
    });
    this.store.servers.clearRuntime(s.id);
    if (s.network === 'novabox') this.detachQuietly(s.id);
    this.ports.unpublish(s.id);
    const exit = recordedExit(s.id);
    const clean = exit && s.init === 'systemd' ? exitMeaning(s.init, exit) : undefined;
    const meaning = clean && !clean.crashed ? clean.how : undefined;
    logLine(
      s.id,
      `server stopped (${step === 'kill' ? 'killed after the timeout' : step === 'signal' ? 'stop signal' : 'was not running'}${meaning ? `, ${meaning}` : exit ? `, exit status ${exit.code}` : ''})`,
    );
    return step;
  }

  private imageForSafe(s: Server) {
    try {
      return this.imageFor(s);
    } catch {
      return undefined;
    }
  }

  async reboot(nameOrId: string, caller: Caller, opts: { hard?: boolean; timeoutMs?: number } = {}): Promise<Server> {
    const s = this.find(nameOrId, caller);
    const hard = Boolean(opts.hard);
    const from: VmState[] = hard ? ['active', 'stopped', 'paused', 'suspended', 'error'] : ['active'];
    const ev = this.store.tx(() => {
      const { a } = this.begin(s, caller, 'reboot', from, hard ? 'rebooting_hard' : 'rebooting');
      return this.store.actions.event(a.id, 'compute_reboot_instance');
    });
    try {
      this.store.servers.update(s.id, { taskState: hard ? 'reboot_started_hard' : 'reboot_started' });
      this.halt(s, opts.timeoutMs ?? 10_000, hard);
      await this.boot(s);
      return this.store.tx(() => {
        ev('Success');
        return this.finish(s.id, { vmState: 'active', powerState: POWER_STATE.RUNNING, fault: null });
      });
    } catch (err) {
      ev('Error', (err as Error).message);
      this.fail(s, `reboot failed: ${(err as Error).message}`);
      throw err;
    }
  }

  pause(nameOrId: string, caller: Caller): Server {
    return this.freezer(nameOrId, caller, true);
  }

  unpause(nameOrId: string, caller: Caller): Server {
    return this.freezer(nameOrId, caller, false);
  }

  /** pause/unpause: the cgroup freezer stops every process of the server where it stands. */
  private freezer(nameOrId: string, caller: Caller, freeze: boolean): Server {
    const s = this.find(nameOrId, caller);
    const action = freeze ? 'pause' : 'unpause';
    // the claim, its action and event in one commit, the outcome in another
    const ev = this.store.tx(() => {
      const { a } = this.begin(s, caller, action, [freeze ? 'active' : 'paused'], freeze ? 'pausing' : 'unpausing');
      return this.store.actions.event(a.id, `compute_${action}_instance`);
    });
    try {
      (freeze ? freezeServer : thawServer)(this.facts(s.id)!, this.driver);
      return this.store.tx(() => {
        ev('Success');
        return freeze
          ? this.finish(s.id, { vmState: 'paused', powerState: POWER_STATE.PAUSED })
          : this.finish(s.id, { vmState: 'active', powerState: POWER_STATE.RUNNING });
      });
    } catch (err) {
      ev('Error', (err as Error).message);
      this.finish(s.id, {});
      throw err;
    }
  }

  /**
   * Nova's suspend for a container: freeze every process (the cgroup freezer), then give
   * its memory back to the host: on cgroup v2, memory.reclaim drops its page cache and,
   * where the host has swap, pushes its anonymous memory there (the flavor's swap-off is
   * lifted while suspended). On cgroup v1, or v2 without swap, the anonymous memory stays
   * resident: suspend is then a freeze. resume thaws it; its pages come back as touched.
   */
  suspend(nameOrId: string, caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    const { a } = this.begin(s, caller, 'suspend', ['active'], 'suspending');
    const ev = this.store.actions.event(a.id, 'compute_suspend_instance');
    try {
      const facts = this.facts(s.id);
      if (!facts) throw new NovaboxError('conflict', `server "${s.name}" is not running`);
      freezeServer(facts, this.driver);
      const cg = this.driver.open(facts.cgroupPath);
      let how = 'frozen; cgroup v1 has no memory.reclaim: its memory stays resident';
      if (cg.reclaim) {
        try {
          const r = cg.reclaim();
          const mib = (n: number) => (n / 2 ** 20).toFixed(1);
          how = r.supported
            ? `frozen; memory ${mib(r.beforeBytes)} MiB -> ${mib(r.afterBytes)} MiB (memory.reclaim)`
            : 'frozen; this kernel has no memory.reclaim';
        } catch (err) {
          how = `frozen; memory.reclaim failed: ${(err as Error).message}`;
        }
      }
      logLine(s.id, `server suspended (${how})`);
      ev('Success');
      return this.finish(s.id, { vmState: 'suspended', powerState: POWER_STATE.SUSPENDED });
    } catch (err) {
      ev('Error', (err as Error).message);
      try {
        const f = this.facts(s.id);
        if (f) thawServer(f, this.driver);
      } catch {
        /* not frozen */
      }
      this.finish(s.id, {});
      throw err;
    }
  }

  resume(nameOrId: string, caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    const { a } = this.begin(s, caller, 'resume', ['suspended'], 'resuming');
    const ev = this.store.actions.event(a.id, 'compute_resume_instance');
    try {
      const facts = this.facts(s.id);
      if (!facts) throw new NovaboxError('conflict', `server "${s.name}" is not running`);
      this.applyFlavor(s.id, this.flavorOf(s)); // swap off again, as the flavor says
      thawServer(facts, this.driver);
      logLine(s.id, 'server resumed');
      ev('Success');
      return this.finish(s.id, { vmState: 'active', powerState: POWER_STATE.RUNNING });
    } catch (err) {
      ev('Error', (err as Error).message);
      this.finish(s.id, {});
      throw err;
    }
  }

  /**
   * Nova's nova-compute service state, from reality: up while this host can run servers
   * (its cgroup hierarchy is found and the state root is there), down otherwise.
   */
  serviceState(): { state: 'up' | 'down'; reason: string | null } {
    try {
      detectCgroups();
      this.store.getSetting('local_project_id');
      return { state: 'up', reason: null };
    } catch (err) {
      return { state: 'down', reason: (err as Error).message };
    }
  }

  /** Nova's migrate (ACTIVE, SHUTOFF) and live-migrate (ACTIVE, PAUSED) state check: the 409 before any "no host". */
  checkMigratable(nameOrId: string, caller: Caller, action: 'migrate' | 'os-migrateLive'): void {
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    const from: VmState[] = action === 'migrate' ? ['active', 'stopped'] : ['active', 'paused'];
    if (!from.includes(s.vmState) || s.taskState !== null) {
      throw new Conflict(
        `Cannot '${action}' instance ${s.id} while it is in vm_state ${s.vmState}${s.taskState ? ` (task_state ${s.taskState})` : ''}`,
      );
    }
  }

  lock(nameOrId: string, caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    this.store.actions.start(s.id, 'lock', { requestId: caller.requestId, userId: caller.userId, projectId: caller.projectId });
    return this.store.servers.update(s.id, { locked: true, lockedBy: caller.isAdmin && caller.userId !== s.userId ? 'admin' : 'owner' });
  }

  unlock(nameOrId: string, caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    if (s.locked && s.lockedBy === 'admin' && !caller.isAdmin) {
      throw new Conflict(`Instance ${s.id} is locked by an administrator`);
    }
    this.store.actions.start(s.id, 'unlock', { requestId: caller.requestId, userId: caller.userId, projectId: caller.projectId });
    return this.store.servers.update(s.id, { locked: false, lockedBy: null });
  }

  /**
   * Nova's os-resetState (an admin's override, the caller's policy checked by the front
   * end): vm_state set to active or error from any state, the task and its owner cleared.
   */
  resetState(nameOrId: string, state: 'active' | 'error', caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    this.store.actions.start(s.id, 'resetState', { requestId: caller.requestId, userId: caller.userId, projectId: caller.projectId });
    return this.store.servers.update(s.id, { vmState: state, taskState: null, taskOwnerPid: null, taskOwnerStart: null });
  }

  // ---- resize: one host, so a resize is new cgroup limits ------------------------------

  /**
   * Nova's resize on a single host: the new flavor's limits are written to the running
   * server's cgroup at once (a stopped one gets them at its next start); the server waits
   * in VERIFY_RESIZE until confirmResize keeps them or revertResize restores the old ones.
   */
  resize(nameOrId: string, flavorRef: string, caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    const flavor = this.store.flavors.get(flavorRef, caller.isAdmin ? {} : { projectId: caller.projectId });
    if (flavor.id === s.flavorId) throw new BadRequest('When resizing, instances must change flavor!');
    if (flavor.disabled) throw new BadRequest(`flavor "${flavor.name}" is disabled`);
    checkImageFits(new ImageRepo(this.store.db, this.store.tx).get(s.imageRef), flavor);
    const { a } = this.begin(s, caller, 'resize', ['active', 'stopped'], 'resize_prep');
    const ev = this.store.actions.event(a.id, 'compute_resize_instance');
    try {
      this.applyFlavor(s.id, flavor);
    } catch (err) {
      ev('Error', (err as Error).message);
      this.finish(s.id, {});
      throw err;
    }
    this.store.resizes.insert({
      serverId: s.id,
      projectId: s.projectId,
      status: 'finished',
      oldFlavorId: s.flavorId,
      newFlavorId: flavor.id,
      preVmState: s.vmState,
      host: s.host,
      oldFlavor: this.flavorOfSafe(s) ?? null,
      newFlavor: flavor,
    });
    ev('Success');
    logLine(s.id, `server resized to flavor ${flavor.name} (${flavor.vcpus} vcpus, ${flavor.ramMiB} MiB)`);
    return this.finish(s.id, { vmState: 'resized', flavorId: flavor.id, flavor });
  }

  confirmResize(nameOrId: string, caller: Caller): Server {
    return this.endResize(nameOrId, caller, true);
  }

  revertResize(nameOrId: string, caller: Caller): Server {
    return this.endResize(nameOrId, caller, false);
  }

  private endResize(nameOrId: string, caller: Caller, confirm: boolean): Server {
    const s = this.find(nameOrId, caller);
    const action = confirm ? 'confirmResize' : 'revertResize';
    const { a } = this.begin(s, caller, action, ['resized'], confirm ? 'resize_confirming' : 'resize_reverting');
    const ev = this.store.actions.event(a.id, confirm ? 'compute_confirm_resize' : 'compute_revert_resize');
    const r = this.store.resizes.pending(s.id);
    // the copy kept with the resize: the old flavor may have been deleted since (Nova)
    const old = confirm ? undefined : (r.oldFlavor ?? this.store.flavors.get(r.oldFlavorId));
    try {
      if (old) this.applyFlavor(s.id, old);
    } catch (err) {
      ev('Error', (err as Error).message);
      this.finish(s.id, {});
      throw err;
    }
    this.store.resizes.setStatus(r.id, confirm ? 'confirmed' : 'reverted');
    ev('Success');
    const vmState = (r.preVmState === 'stopped' ? 'stopped' : 'active') as VmState;
    return this.finish(s.id, confirm ? { vmState } : { vmState, flavorId: r.oldFlavorId, flavor: old });
  }

  /** The server's flavor: the copy kept with it (Nova's instance.flavor), else the flavor record. */
  flavorOf(s: Pick<Server, 'flavor' | 'flavorId'>): Flavor {
    return s.flavor ?? this.store.flavors.get(s.flavorId);
  }

  flavorOfSafe(s: Pick<Server, 'flavor' | 'flavorId'>): Flavor | undefined {
    try {
      return this.flavorOf(s);
    } catch {
      return undefined;
    }
  }

  /** Nova's flavor show reads deleted flavors too: a flavor gone from the table is shown from a server's copy. */
  showFlavor(id: string, caller: Caller): Flavor {
    try {
      return this.store.flavors.get(id, caller.isAdmin ? {} : { projectId: caller.projectId });
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
      let exists = true;
      try {
        this.store.flavors.get(id); // a private flavor not shared with the caller stays hidden
      } catch {
        exists = false;
      }
      const copy = exists ? undefined : this.store.servers.flavorCopy(id);
      if (copy) return copy;
      throw err;
    }
  }

  /**
   * Nova's simple tenant usage: per server that existed in [start, end), the hours it
   * existed in it (from launch, else creation, to deletion or `end`) times its flavor's
   * vcpus, memory and disk. `projectId` undefined: every project.
   */
  usage(start: Date, end: Date, projectId?: string): ServerUsage[] {
    const iso = (d: Date) => d.toISOString().replace('Z', '').padEnd(26, '0');
    const now = Date.now();
    const t = (stored: string) => Date.parse(`${stored.slice(0, 23)}Z`);
    const out: ServerUsage[] = [];
    for (const s of this.store.servers.existedBetween(iso(start), iso(end), projectId)) {
      const from = Math.max(start.getTime(), t(s.launchedAt ?? s.createdAt));
      const to = Math.min(end.getTime(), s.terminatedAt ? t(s.terminatedAt) : now);
      const f = this.flavorOfSafe(s);
      const hours = Math.max(0, to - from) / 3_600_000;
      const endedAt = s.deleted ? s.terminatedAt : null;
      out.push({
        server: s,
        flavor: f,
        hours,
        uptimeSeconds: Math.max(0, Math.floor(((endedAt ? t(endedAt) : now) - t(s.launchedAt ?? s.createdAt)) / 1000)),
        endedAt,
      });
    }
    return out;
  }

  /** The flavor's limits on the live cgroup, when the server runs. */
  private applyFlavor(id: string, flavor: Flavor): void {
    if (!isRunning(this.facts(id))) return;
    this.driver.open(cgroupPathOf(id)).setLimits(flavorLimits(flavor));
  }

  /**
   * Nova's flavor list: a non-admin sees the public flavors and the private ones shared
   * with the project (never disabled ones); an admin chooses with is_public: true (public
   * and those shared with the admin's project), false (only private ones), null (all).
   */
  flavorsFor(caller: Caller, isPublic: boolean | null, opts: { minRamMiB?: number; minDiskGiB?: number } = {}): Flavor[] {
    const all = this.store.flavors.list({ includePrivate: true, ...opts });
    if (!caller.isAdmin) {
      return all.filter((f) => !f.disabled && (f.isPublic || this.store.flavors.hasAccess(f.id, caller.projectId)));
    }
    if (isPublic === null) return all;
    if (isPublic === false) return all.filter((f) => !f.isPublic);
    return all.filter((f) => f.isPublic || this.store.flavors.hasAccess(f.id, caller.projectId));
  }

  setProperties(nameOrId: string, props: Record<string, string>, caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    for (const [k, v] of Object.entries(props)) checkProperty(k, v);
    return this.store.tx(() => {
      const cur = this.store.servers.get(s.id)!;
      return this.store.servers.update(s.id, { metadata: { ...cur.metadata, ...props } });
    });
  }

  /** All properties at once (Nova's PUT metadata): `{}` clears them. */
  replaceProperties(nameOrId: string, props: Record<string, string>, caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    for (const [k, v] of Object.entries(props)) checkProperty(k, v);
    return this.store.servers.update(s.id, { metadata: { ...props } });
  }

  /** Nova's PUT /servers/{id}: name and access addresses. */
  rename(nameOrId: string, patch: { name?: string; accessIpv4?: string; accessIpv6?: string }, caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    if (patch.name !== undefined) checkServerName(patch.name);
    return this.store.servers.update(s.id, patch);
  }

  unsetProperties(nameOrId: string, keys: string[], caller: Caller): Server {
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    return this.store.tx(() => {
      const cur = this.store.servers.get(s.id)!;
      const metadata = { ...cur.metadata };
      for (const k of keys) {
        if (!(k in metadata)) throw new NotFound(`server "${s.name}" has no property "${k}"`);
        delete metadata[k];
      }
      return this.store.servers.update(s.id, { metadata });
    });
  }

  /**
   * `server add volume`: recorded, and mounted at each start; on an ACTIVE server also
   * mounted into its running mount namespace at once (runtime/volumes.ts mountVolumeLive).
   * Other states (busy, paused, suspended) are refused.
   */
  addVolume(nameOrId: string, volume: string, path: string, opts: { readOnly?: boolean }, caller: Caller) {
    const live = this.liveFor(nameOrId, caller);
    if (live) {
      const { s, init } = live;
      return this.volumes.attachRunning(s.id, s.name, volume, path, Boolean(opts.readOnly), init, this.idmapFor(s));
    }
    const s = this.stoppedFor(nameOrId, caller, 'attach a volume to');
    return this.volumes.attach(s.id, volume, path, Boolean(opts.readOnly));
  }

  /** `server remove volume`: an ACTIVE server's mount is detached inside it; else SHUTOFF only. */
  removeVolume(nameOrId: string, volume: string, caller: Caller): void {
    const live = this.liveFor(nameOrId, caller);
    if (live) return this.volumes.detach(live.s.id, live.s.name, volume, live.init);
    const s = this.stoppedFor(nameOrId, caller, 'detach a volume from');
    this.volumes.detach(s.id, s.name, volume);
  }

  /** An ACTIVE server with no task, running: its pid 1 (for a mount into its namespace). */
  private liveFor(nameOrId: string, caller: Caller): { s: Server; init: { pid: number; start: number } } | undefined {
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    const facts = this.facts(s.id);
    if (s.vmState !== 'active' || s.taskState !== null || !facts || !isRunning(facts)) return undefined;
    return { s, init: { pid: facts.initPid, start: facts.initStart } };
  }

  private stoppedFor(nameOrId: string, caller: Caller, what: string): Server {
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    if (s.taskState !== null || !['stopped', 'error'].includes(s.vmState) || isRunning(this.facts(s.id))) {
      throw new Conflict(`cannot ${what} server "${s.name}": it is ${statusOf(s.vmState, s.taskState)}`, {
        hint: `a volume is attached to a stopped or running server: wait for it, or unpause it`,
      });
    }
    return s;
  }

  /** Nova deletes a running server (stopping it); --force skips the graceful stop. */
  delete(nameOrId: string, caller: Caller, opts: { force?: boolean; timeoutMs?: number } = {}): Server {
    const s = this.find(nameOrId, caller);
    this.checkLock(s, caller);
    const cur = this.store.servers.transition(s.id, {
      from: ['building', 'active', 'stopped', 'paused', 'suspended', 'error', 'resized'],
      action: 'delete',
      to: { taskState: 'deleting', ...this.owner() },
      allowTask: true,
    });
    const a = this.store.actions.start(s.id, 'delete', { requestId: caller.requestId, userId: caller.userId, projectId: caller.projectId });
    trace('delete claimed');
    try {
      this.halt(cur, opts.timeoutMs ?? 10_000, Boolean(opts.force));
      trace('halted');
      // Also what a killed CLI may have left without a record; an error here is not swallowed:
      // the server stays (ERROR, with the reason) rather than leaking a cgroup silently.
      this.driver.open(cgroupPathOf(s.id)).remove();
      this.releaseNetwork(s.id); // its rules went with halt (or the reconcile that found it stopped)
      this.ports.forget(s.id);
      this.volumes.detachAll(s.id);
      removeServerFiles(s.id);
      // after the files: its writable layer holds ids of the range until it is gone
      this.idmaps.release(s.id);
      trace('files removed');
    } catch (err) {
      this.store.actions.event(a.id, 'compute_terminate_instance')('Error', (err as Error).message);
      this.fail(cur, `delete failed: ${(err as Error).message}`);
      throw err;
    }
    // kept as a deleted row, as Nova keeps it: changes-since, list markers and usage see it
    return this.store.servers.update(s.id, {
      deleted: true,
      vmState: 'deleted',
      taskState: null,
      powerState: POWER_STATE.NOSTATE,
      terminatedAt: nowIso(),
      taskOwnerPid: null,
      taskOwnerStart: null,
    });
  }

  async exec(nameOrId: string, req: ExecRequest, caller: Caller, io: { stderr: (l: string) => void }): Promise<number> {
    const s = this.find(nameOrId, caller);
    if (s.vmState !== 'active' || s.taskState !== null) {
      throw new Conflict(`cannot exec in server "${s.name}": it is ${statusOf(s.vmState, s.taskState)}`, {
        hint: s.vmState === 'stopped' ? `start it first ("novabox server start ${s.name}")` : undefined,
      });
    }
    const facts = this.facts(s.id);
    if (!facts) throw new NovaboxError('conflict', `server "${s.name}" is not running`);
    return execInServer(
      facts,
      { hostname: hostnameOf(s.name), image: this.imageFor(s), network: s.network, idmap: this.idmaps.idmapOf(s.id), init: s.init },
      req,
      this.driver,
      io,
    );
  }

  /**
   * `server cp`: files between the host and a server, running (through its init's root)
   * or stopped (its layers; a copy in lands in its writable layer). runtime/server-files.ts
   * keeps every step inside the server's root. Returns the number of entries made.
   */
  copyFiles(nameOrId: string, from: CopyEnd, to: CopyEnd, caller: Caller, io: { skipped: Skipped }): number {
    const s = this.find(nameOrId, caller);
    const facts = this.facts(s.id);
    const running = isRunning(facts);
    if (s.taskState !== null || (!running && !['stopped', 'error'].includes(s.vmState)))
      throw new Conflict(`cannot copy files ${to.server ? 'into' : 'from'} server "${s.name}": it is ${statusOf(s.vmState, s.taskState)}`, {
        hint: 'wait for its action to finish',
      });
    const idmap = s.userns === 'auto' ? this.idmaps.idmapOf(s.id) : undefined;
    const tree: ServerTree =
      running && facts
        ? { init: { pid: facts.initPid, isSame: () => isSameProcess(facts.initPid, facts.initStart, facts.bootId) }, lowers: [], idmap }
        : { upper: s.ephemeral ? undefined : serverDirs(s.id).upper, lowers: this.imageFor(s).layerDirs, idmap };
    return copyServerFiles(tree, from, to, io.skipped);
  }

  /**
   * `server stats`: the usage of the named servers (every running one when none is named),
   * CPU % over `sampleMs` between two samples; with `previous` (a stream's last round) over
   * the time since then, without waiting.
   */
  async stats(
    names: string[],
    caller: Caller,
    opts: { sampleMs?: number; previous?: Map<string, CpuSample> } = {},
  ): Promise<{ stats: ServerStats[]; samples: Map<string, StatsSample> }> {
    const running = (s: Server) => isRunning(this.facts(s.id));
    const servers = names.length
      ? names.map((n) => {
          const s = this.find(n, caller);
          if (!running(s)) throw new Conflict(`server "${s.name}" is not running: it is ${statusOf(s.vmState, s.taskState)}`);
          return s;
        })
      : this.list({}, caller).filter(running);
    trace('stats: servers listed');
    const targets: StatsTarget[] = servers.map((s) => ({
      id: s.id,
      name: s.name,
      network: s.network,
      cgroup: this.driver.open(cgroupPathOf(s.id)),
    }));
    let before = opts.previous;
    if (!before) {
      // each server's window runs from its first read to its second, both in the same
      // order: the wait is what is left of the window after the first pass
      const t0 = performance.now();
      before = new Map();
      for (const t of targets) {
        const x = cpuSample(t);
        if (x) before.set(t.id, x);
      }
      trace('stats: first sample');
      const left = (opts.sampleMs ?? 50) - (performance.now() - t0);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    }
    const samples = new Map<string, StatsSample>();
    const stats: ServerStats[] = [];
    const net = targets.some((t) => t.network === 'novabox') ? allVethTraffic() : undefined;
    for (const t of targets) {
      const after = sample(t, net);
      if (!after) continue;
      samples.set(t.id, after);
      const prev = before.get(t.id);
      stats.push(toServerStats(t, prev ?? after, after));
    }
    trace('stats: second sample');
    return { stats, samples };
  }

  /** `server show`'s usage: one read of the cgroup and the veth (no CPU %: that takes two samples); null when not running. */
  usageOf(s: Server): Record<string, number | null> | null {
    const facts = this.facts(s.id);
    if (!facts || !isRunning(facts)) return null;
    const x = sample({ id: s.id, name: s.name, network: s.network, cgroup: this.driver.open(cgroupPathOf(s.id)) });
    if (!x) return null;
    const started = Date.parse(facts.startedAt.endsWith('Z') ? facts.startedAt : `${facts.startedAt}Z`);
    return {
      uptime_seconds: Number.isFinite(started) ? Math.max(0, Math.round((Date.now() - started) / 1000)) : null,
      cpu_seconds: Math.round(x.cg.cpuUsageUs / 1000) / 1000,
      memory_bytes: x.cg.memoryCurrentBytes,
      memory_peak_bytes: x.cg.memoryPeakBytes,
      memory_limit_bytes: x.cg.memoryLimitBytes ?? null,
      pids: x.cg.pidsCurrent,
      oom_kills: x.cg.oomKills,
      net_rx_bytes: x.net?.rxBytes ?? null,
      net_tx_bytes: x.net?.txBytes ?? null,
      block_read_bytes: x.cg.ioReadBytes ?? null,
      block_write_bytes: x.cg.ioWriteBytes ?? null,
    };
  }

  /** Nova's `addresses` of a server (compute/addresses.ts), for the CLI and the API. */
  addresses(s: Pick<Server, 'id'>): Record<string, NovaAddress[]> {
    return novaAddresses(this.store.leases.ofOwner(s.id));
  }

  /** addresses() of many servers with one query (server list). */
  addressesOfMany(servers: Pick<Server, 'id'>[]): Map<string, Record<string, NovaAddress[]>> {
    const byOwner = this.store.leases.ofOwners(servers.map((s) => s.id));
    return new Map(servers.map((s) => [s.id, novaAddresses(byOwner.get(s.id) ?? [])]));
  }

  consoleLog(nameOrId: string, caller: Caller, lines?: number): string {
    const s = this.find(nameOrId, caller);
    return readConsole(s.id, lines);
  }

  /**
   * `console log show --follow`: the last `lines` lines, then each line as it is written,
   * across the log's rotation (runtime/console-tail.ts), until the server is no longer
   * running and no action is under way on it (a stop's own last line is shown), or until
   * `signal` aborts. The state is re-read at most every `checkMs / 4` on a wake-up and
   * every `checkMs` regardless.
   */
  async followConsole(
    nameOrId: string,
    caller: Caller,
    o: { lines?: number; write: (text: string) => void; signal?: AbortSignal; checkMs?: number },
  ): Promise<void> {
    if (o.lines !== undefined && (!Number.isInteger(o.lines) || o.lines < 0))
      throw new BadRequest(`invalid --lines ${o.lines}: expected a whole number >= 0`);
    const s = this.find(nameOrId, caller);
    const tail = new ConsoleTail(serverDirs(s.id).log);
    const checkMs = o.checkMs ?? 1000;
    const ended = (): boolean => {
      try {
        const row = this.store.servers.get(s.id);
        if (!row) return true; // deleted
        const cur = this.reconcile(row);
        return cur.taskState === null && !LIVE_VM_STATES.has(cur.vmState) && cur.powerState !== POWER_STATE.RUNNING;
      } catch {
        return true; // the database went away under us
      }
    };
    try {
      const backlog = lastLines(tail.backlog(), o.lines);
      if (backlog) o.write(backlog);
      if (o.signal?.aborted || ended()) return;
      await new Promise<void>((resolve) => {
        let lastCheck = Date.now();
        let later: NodeJS.Timeout | undefined;
        const finish = () => {
          unwatch();
          clearTimeout(later);
          o.signal?.removeEventListener('abort', finish);
          const rest = tail.read();
          if (rest) o.write(rest);
          resolve();
        };
        const check = () => {
          later = undefined;
          lastCheck = Date.now();
          if (ended()) finish();
        };
        const wake = () => {
          const text = tail.read();
          if (text) o.write(text);
          const due = lastCheck + checkMs / 4 - Date.now();
          if (due <= 0) check();
          else later ??= setTimeout(check, due);
        };
        const unwatch = watchConsole(tail.path, wake, checkMs);
        o.signal?.addEventListener('abort', finish, { once: true });
        wake(); // what was written between the backlog and the watch
      });
    } finally {
      tail.close();
    }
  }
}

/** vm_states in which a server's processes run (or are frozen): a follower keeps following. */
const LIVE_VM_STATES: ReadonlySet<VmState> = new Set<VmState>(['active', 'paused', 'suspended', 'building']);

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Nova: an image's min_ram / min_disk above the flavor's memory / disk is a 400. */
export function checkImageFits(image: Pick<ImageRecord, 'minRam' | 'minDisk'> | undefined, flavor: Flavor): void {
  if (!image) return;
  if (image.minRam > 0 && flavor.ramMiB < image.minRam) throw new BadRequest("Flavor's memory is too small for requested image.");
  // a flavor of disk 0 has no root disk size to check (Nova checks the image size then; a container has none)
  if (image.minDisk > 0 && flavor.diskGiB > 0 && flavor.diskGiB < image.minDisk)
    throw new BadRequest("Flavor's disk is too small for requested image.");
}

/** The last `lines` lines of a server's console (the rotated file and the live one). */
export function readConsole(id: string, lines?: number): string {
  const d = serverDirs(id);
  let text = '';
  for (const f of [`${d.log}.1`, d.log]) {
    try {
      text += readFileSync(f, 'utf8');
    } catch {
      /* not there */
    }
  }
  if (lines === undefined) return text;
  if (!Number.isInteger(lines) || lines < 0) throw new BadRequest(`invalid --lines ${lines}: expected a whole number >= 0`);
  if (lines === 0) return '';
  const all = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  return all.slice(-lines).join('\n') + '\n';
}

function checkProperty(k: string, v: string): void {
  if (!k || k.length > 255 || v.length > 255) throw new BadRequest(`invalid property "${k}": keys and values are 1 to 255 characters`);
}

/** A valid hostname from a server name (Nova sanitises the same way). */
export function hostnameOf(name: string): string {
  const h = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return h || 'server';
}

let cachedHost: string | undefined;
function hostName(): string {
  cachedHost ??= osHostname();
  return cachedHost;
}

export { statusOf };
/** For a process that lives on after starting servers (serve): reap their monitors as they exit. */
export { reapMonitorsOnExit } from '../runtime/reaper.js';
