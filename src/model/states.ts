/**
 * Nova's state model (nova/compute/vm_states.py, task_states.py, power_state.py and
 * api/openstack/common.py): three stored fields, one derived `status`. Pure data.
 */

export const VM_STATES = [
  'building',
  'active',
  'stopped',
  'paused',
  'suspended',
  'resized',
  'error',
  'deleted',
  'soft-deleted',
  'rescued',
  'shelved',
  'shelved_offloaded',
] as const;
export type VmState = (typeof VM_STATES)[number];

export const TASK_STATES = [
  // create
  'scheduling',
  'block_device_mapping',
  'networking',
  'spawning',
  // power
  'powering-off',
  'powering-on',
  'rebooting',
  'reboot_pending',
  'reboot_started',
  'rebooting_hard',
  'reboot_pending_hard',
  'reboot_started_hard',
  'pausing',
  'unpausing',
  'suspending',
  'resuming',
  // rebuild, resize, migrate
  'rebuilding',
  'rebuild_block_device_mapping',
  'rebuild_spawning',
  'resize_prep',
  'resize_migrating',
  'resize_migrated',
  'resize_finish',
  'resize_reverting',
  'resize_confirming',
  'migrating',
  // images
  'image_snapshot',
  'image_snapshot_pending',
  'image_backup',
  'image_pending_upload',
  'image_uploading',
  // the rest
  'deleting',
  'soft-deleting',
  'restoring',
  'rescuing',
  'unrescuing',
  'shelving',
  'shelving_offloading',
  'unshelving',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const POWER_STATE = {
  NOSTATE: 0,
  RUNNING: 1,
  PAUSED: 3,
  SHUTDOWN: 4,
  CRASHED: 6,
  SUSPENDED: 7,
} as const;
export type PowerState = (typeof POWER_STATE)[keyof typeof POWER_STATE];

export const POWER_STATE_NAMES: Record<PowerState, string> = {
  0: 'NOSTATE',
  1: 'RUNNING',
  3: 'PAUSED',
  4: 'SHUTDOWN',
  6: 'CRASHED',
  7: 'SUSPENDED',
};

export type Status =
  | 'BUILD'
  | 'ACTIVE'
  | 'SHUTOFF'
  | 'PAUSED'
  | 'SUSPENDED'
  | 'REBOOT'
  | 'HARD_REBOOT'
  | 'REBUILD'
  | 'MIGRATING'
  | 'RESIZE'
  | 'VERIFY_RESIZE'
  | 'REVERT_RESIZE'
  | 'ERROR'
  | 'DELETED'
  | 'SOFT_DELETED'
  | 'RESCUE'
  | 'SHELVED'
  | 'SHELVED_OFFLOADED'
  | 'UNKNOWN';

const REBOOT: Partial<Record<TaskState, Status>> = {
  rebooting: 'REBOOT',
  reboot_pending: 'REBOOT',
  reboot_started: 'REBOOT',
  rebooting_hard: 'HARD_REBOOT',
  reboot_pending_hard: 'HARD_REBOOT',
  reboot_started_hard: 'HARD_REBOOT',
};
const REBUILD: Partial<Record<TaskState, Status>> = {
  rebuilding: 'REBUILD',
  rebuild_block_device_mapping: 'REBUILD',
  rebuild_spawning: 'REBUILD',
};
const RESIZE: Partial<Record<TaskState, Status>> = {
  resize_prep: 'RESIZE',
  resize_migrating: 'RESIZE',
  resize_migrated: 'RESIZE',
  resize_finish: 'RESIZE',
};

/** Nova's _STATE_MAP: per vm_state, the task states that change the status, then the default. */
const STATE_MAP: Record<VmState, { default: Status; byTask?: Partial<Record<TaskState, Status>> }> = {
  building: { default: 'BUILD' },
  active: { default: 'ACTIVE', byTask: { ...REBOOT, ...REBUILD, ...RESIZE, migrating: 'MIGRATING' } },
  stopped: { default: 'SHUTOFF', byTask: { ...RESIZE, ...REBUILD } },
  paused: { default: 'PAUSED', byTask: { migrating: 'MIGRATING' } },
  suspended: { default: 'SUSPENDED' },
  resized: { default: 'VERIFY_RESIZE', byTask: { resize_reverting: 'REVERT_RESIZE' } },
  error: { default: 'ERROR', byTask: { ...REBUILD } },
  deleted: { default: 'DELETED' },
  'soft-deleted': { default: 'SOFT_DELETED' },
  rescued: { default: 'RESCUE' },
  shelved: { default: 'SHELVED' },
  shelved_offloaded: { default: 'SHELVED_OFFLOADED' },
};

/** The API `status` of a server: computed, never stored. */
export function statusOf(vm: VmState, task: TaskState | null): Status {
  const entry = STATE_MAP[vm] as (typeof STATE_MAP)[VmState] | undefined;
  if (!entry) return 'UNKNOWN';
  return (task !== null && entry.byTask?.[task]) || entry.default;
}

export type ServerAction =
  | 'create'
  | 'stop'
  | 'start'
  | 'reboot-soft'
  | 'reboot-hard'
  | 'pause'
  | 'unpause'
  | 'suspend'
  | 'resume'
  | 'rebuild'
  | 'createImage'
  | 'delete'
  | 'lock'
  | 'unlock';

const ANY: VmState[] = [...VM_STATES];

/**
 * The vm_states an action may start from (task_state must be null, except for delete,
 * which Nova allows even while a task runs). `create` makes the server: no state before.
 */
export const ALLOWED_FROM: Record<ServerAction, VmState[]> = {
  create: [],
  stop: ['active', 'error'],
  start: ['stopped'],
  'reboot-soft': ['active'],
  'reboot-hard': ['active', 'stopped', 'paused', 'suspended', 'error'],
  pause: ['active'],
  unpause: ['paused'],
  suspend: ['active'],
  resume: ['suspended'],
  rebuild: ['active', 'stopped', 'error'],
  createImage: ['active', 'stopped', 'paused', 'suspended'],
  delete: ANY,
  lock: ANY,
  unlock: ANY,
};
