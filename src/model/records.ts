/**
 * The records every tier passes around (servers, flavors, keypairs, instance actions,
 * Keystone's projects, users and roles, the published images) and the network modes: types and constants only,
 * no code. The store's repositories read and write them; compute, images, runtime and
 * the front ends all use them without importing the store.
 */
import type { PowerState, TaskState, VmState } from './states.js';

/** none, host, or the bridge network, named as Nova shows it (addresses are listed under it) */
export type NetworkMode = 'none' | 'host' | 'novabox';

export interface Fault {
  code: number;
  message: string;
  details?: string;
  created: string;
}

export interface Server {
  id: string;
  name: string;
  projectId: string;
  userId: string;
  imageRef: string;
  imageName: string;
  flavorId: string;
  vmState: VmState;
  taskState: TaskState | null;
  powerState: PowerState;
  metadata: Record<string, string>;
  keyName: string | null;
  accessIpv4: string;
  accessIpv6: string;
  locked: boolean;
  lockedBy: 'owner' | 'admin' | null;
  host: string;
  fault: Fault | null;
  ephemeral: boolean;
  network: NetworkMode;
  /** auto: a user namespace with an id range of its own (its lease: store/idmap-leases.ts); host: none */
  userns: 'auto' | 'host';
  /** the process running the current task (pid + /proc start time), to spot a killed CLI */
  taskOwnerPid: number | null;
  taskOwnerStart: number | null;
  createdAt: string;
  updatedAt: string;
  launchedAt: string | null;
  terminatedAt: string | null;
  deleted: boolean;
  /** the flavor as it was when the server got it (Nova's instance.flavor); null for servers older than the copy */
  flavor: Flavor | null;
  /** restart policy: 'no', 'always', 'on-failure' or 'on-failure:N' (compute/restart.ts) */
  restart: string;
  /** restarts since the server last ran long enough (the backoff's exponent, on-failure's count) */
  restartCount: number;
  /** Nova's user_data: base64 as given at create (at most 65535 characters), or null */
  userData: string | null;
  /** the public key of key_name as it was at create (Nova's copy with the instance), or null */
  keyData: string | null;
  /** config_drive as asked at create (the NoCloud seed is there either way) */
  configDrive: boolean;
  /** pid 1: novabox-init, or the image's systemd (a system container); chosen at create */
  init: 'novabox' | 'systemd';
}

export interface Flavor {
  id: string;
  name: string;
  vcpus: number;
  ramMiB: number;
  diskGiB: number;
  swapMiB: number;
  ephemeralGiB: number;
  rxtxFactor: number;
  isPublic: boolean;
  disabled: boolean;
  extraSpecs: Record<string, string>;
  createdAt: string;
}

export interface Keypair {
  id: number;
  userId: string;
  name: string;
  type: string;
  publicKey: string;
  fingerprint: string;
  createdAt: string;
}

/** One user request against a server (`server event list`). */
export interface InstanceAction {
  id: number;
  serverId: string;
  requestId: string;
  action: string;
  userId: string;
  projectId: string;
  startTime: string;
  message: string | null;
}

export interface ActionEvent {
  event: string;
  startTime: string;
  finishTime: string | null;
  result: EventResult | null;
  traceback: string | null;
}

export type EventResult = 'Success' | 'Error';

export const DEFAULT_DOMAIN = { id: 'default', name: 'Default' } as const;

/**
 * Nova's limit on user_data: 65535 characters of base64 (nova/api/openstack/compute/schemas/servers.py).
 * Here, not in compute/instance-data.ts: `server create`'s options check it, and importing that
 * module from the command line's top level initialised it (and runtime/server-files.ts) on every start.
 */
export const USER_DATA_MAX = 65535;

export interface Project {
  id: string;
  name: string;
  domainId: string;
  description: string;
  enabled: boolean;
}

export interface User {
  id: string;
  name: string;
  domainId: string;
  defaultProjectId: string | null;
  email: string | null;
  description: string;
  enabled: boolean;
}

export interface Role {
  id: string;
  name: string;
}

export interface ImageConfig {
  /** the default command: the OCI Entrypoint followed by Cmd */
  cmd: string[];
  /** the OCI Entrypoint: `run IMAGE ARGS` runs it with ARGS (cmd's other words are replaced) */
  entrypoint?: string[];
  env: string[];
  workingDir: string;
  user: string;
  stopSignal?: string;
  /** what a server of this image runs under novabox-init; [] = idle init (system image) */
  serverCmd?: string[];
}

/**
 * An active image as published for the runtime: images/<name>.json, written by the image
 * service (service.ts) in the transaction that makes the image active, removed when it
 * is deleted. The database is the record; this file lets `novabox run` boot an image
 * without opening it.
 */
export interface Image {
  /** the image's id in the database (absent in files of novabox before the image store) */
  id?: string;
  name: string;
  /** sha256:<hex>, bottom layer first (OCI order) */
  layers: string[];
  config: ImageConfig;
  created: string;
}

/** Who asks (a token's project, user and admin role; the CLI is admin of its own root). */
export interface Caller {
  projectId: string;
  userId: string;
  isAdmin: boolean;
  requestId?: string;
  /**
   * Whether an admin's request passes a lock (Nova: admins bypass locks). The API leaves it
   * unset (true); the local CLI, admin of its root, sets it from `--override-lock`, so a lock
   * means something there too.
   */
  bypassLocks?: boolean;
}
