import { describe, expect, it } from 'vitest';
import {
  ALLOWED_FROM,
  POWER_STATE,
  POWER_STATE_NAMES,
  VM_STATES,
  statusOf,
  type TaskState,
  type VmState,
} from '../../../src/model/states.js';

// Every row of the contract's §3.2 mapping table, each task state it names spelled out.
const ROWS: [VmState, TaskState | null, string][] = [
  ['building', null, 'BUILD'],
  ['building', 'spawning', 'BUILD'],
  ['building', 'scheduling', 'BUILD'],
  ['active', 'rebooting', 'REBOOT'],
  ['active', 'reboot_pending', 'REBOOT'],
  ['active', 'reboot_started', 'REBOOT'],
  ['active', 'rebooting_hard', 'HARD_REBOOT'],
  ['active', 'reboot_pending_hard', 'HARD_REBOOT'],
  ['active', 'reboot_started_hard', 'HARD_REBOOT'],
  ['active', 'rebuilding', 'REBUILD'],
  ['active', 'rebuild_block_device_mapping', 'REBUILD'],
  ['active', 'rebuild_spawning', 'REBUILD'],
  ['active', 'migrating', 'MIGRATING'],
  ['active', 'resize_prep', 'RESIZE'],
  ['active', 'resize_migrating', 'RESIZE'],
  ['active', 'resize_migrated', 'RESIZE'],
  ['active', 'resize_finish', 'RESIZE'],
  ['active', null, 'ACTIVE'],
  ['active', 'powering-off', 'ACTIVE'],
  ['active', 'pausing', 'ACTIVE'],
  ['active', 'image_snapshot', 'ACTIVE'],
  ['active', 'deleting', 'ACTIVE'],
  ['stopped', 'resize_prep', 'RESIZE'],
  ['stopped', 'resize_migrating', 'RESIZE'],
  ['stopped', 'resize_migrated', 'RESIZE'],
  ['stopped', 'resize_finish', 'RESIZE'],
  ['stopped', 'rebuilding', 'REBUILD'],
  ['stopped', 'rebuild_block_device_mapping', 'REBUILD'],
  ['stopped', 'rebuild_spawning', 'REBUILD'],
  ['stopped', null, 'SHUTOFF'],
  ['stopped', 'powering-on', 'SHUTOFF'],
  ['stopped', 'migrating', 'SHUTOFF'],
  ['paused', 'migrating', 'MIGRATING'],
  ['paused', null, 'PAUSED'],
  ['paused', 'unpausing', 'PAUSED'],
  ['suspended', null, 'SUSPENDED'],
  ['suspended', 'resuming', 'SUSPENDED'],
  ['resized', 'resize_reverting', 'REVERT_RESIZE'],
  ['resized', null, 'VERIFY_RESIZE'],
  ['resized', 'resize_confirming', 'VERIFY_RESIZE'],
  ['error', 'rebuilding', 'REBUILD'],
  ['error', 'rebuild_block_device_mapping', 'REBUILD'],
  ['error', 'rebuild_spawning', 'REBUILD'],
  ['error', null, 'ERROR'],
  ['error', 'powering-off', 'ERROR'],
  ['deleted', null, 'DELETED'],
  ['soft-deleted', null, 'SOFT_DELETED'],
  ['rescued', null, 'RESCUE'],
  ['shelved', null, 'SHELVED'],
  ['shelved_offloaded', null, 'SHELVED_OFFLOADED'],
];

describe('statusOf', () => {
  it.each(ROWS)('%s + %s → %s', (vm, task, status) => {
    expect(statusOf(vm, task)).toBe(status);
  });

  it('covers every vm_state', () => {
    expect(new Set(ROWS.map((r) => r[0]))).toEqual(new Set(VM_STATES));
  });

  it('says UNKNOWN for a vm_state it does not know', () => {
    expect(statusOf('bogus' as VmState, null)).toBe('UNKNOWN');
  });
});

describe('ALLOWED_FROM', () => {
  it.each([
    ['stop', ['active', 'error']],
    ['start', ['stopped']],
    ['reboot-soft', ['active']],
    ['reboot-hard', ['active', 'stopped', 'paused', 'suspended', 'error']],
    ['pause', ['active']],
    ['unpause', ['paused']],
    ['suspend', ['active']],
    ['resume', ['suspended']],
    ['rebuild', ['active', 'stopped', 'error']],
    ['createImage', ['active', 'stopped', 'paused', 'suspended']],
    ['create', []],
  ] as const)('%s from %j', (action, from) => {
    expect([...ALLOWED_FROM[action]].sort()).toEqual([...from].sort());
  });

  it.each(['delete', 'lock', 'unlock'] as const)('%s from any vm_state', (action) => {
    expect([...ALLOWED_FROM[action]].sort()).toEqual([...VM_STATES].sort());
  });
});

describe('power states', () => {
  it('has Nova numbers and names', () => {
    expect(POWER_STATE).toEqual({ NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 });
    for (const [name, n] of Object.entries(POWER_STATE)) expect(POWER_STATE_NAMES[n]).toBe(name);
  });
});
