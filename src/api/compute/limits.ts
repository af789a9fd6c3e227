/** Quotas (fixed defaults for now) and the project's usage, in Nova's limit names. */
import type { Caller, ComputeService } from '../../compute/servers.js';
import type { Store } from '../../compute/open.js';
import { MAX_KEYPAIRS } from '../../compute/keypairs.js';

/** -1 means unlimited, as Nova. */
export const QUOTAS = {
  instances: 1000,
  cores: -1,
  ram: -1,
  metadata_items: 128,
  key_pairs: MAX_KEYPAIRS,
  injected_files: 5,
  injected_file_content_bytes: 10240,
  injected_file_path_bytes: 255,
  server_groups: 10,
  server_group_members: 10,
};

export function absoluteLimits(_store: Store, compute: ComputeService, projectId: string, c: Caller) {
  const servers = compute.list({ projectId }, { ...c, isAdmin: true });
  let cores = 0;
  let ram = 0;
  for (const s of servers) {
    // the flavor's copy kept with the server: a deleted flavor still counts
    const f = compute.flavorOfSafe(s);
    cores += f?.vcpus ?? 0;
    ram += f?.ramMiB ?? 0;
  }
  return {
    maxImageMeta: 128,
    maxPersonality: QUOTAS.injected_files,
    maxPersonalitySize: QUOTAS.injected_file_content_bytes,
    maxSecurityGroupRules: -1,
    maxSecurityGroups: -1,
    maxServerMeta: QUOTAS.metadata_items,
    maxTotalCores: QUOTAS.cores,
    maxTotalFloatingIps: -1,
    maxTotalInstances: QUOTAS.instances,
    maxTotalKeypairs: QUOTAS.key_pairs,
    maxTotalRAMSize: QUOTAS.ram,
    maxServerGroups: QUOTAS.server_groups,
    maxServerGroupMembers: QUOTAS.server_group_members,
    totalCoresUsed: cores,
    totalFloatingIpsUsed: 0,
    totalInstancesUsed: servers.length,
    totalRAMUsed: ram,
    totalSecurityGroupsUsed: 0,
    totalServerGroupsUsed: 0,
  };
}

export function quotaSet(projectId: string) {
  return {
    id: projectId,
    instances: QUOTAS.instances,
    cores: QUOTAS.cores,
    ram: QUOTAS.ram,
    floating_ips: -1,
    fixed_ips: -1,
    metadata_items: QUOTAS.metadata_items,
    key_pairs: QUOTAS.key_pairs,
    security_groups: -1,
    security_group_rules: -1,
    injected_files: QUOTAS.injected_files,
    injected_file_content_bytes: QUOTAS.injected_file_content_bytes,
    injected_file_path_bytes: QUOTAS.injected_file_path_bytes,
    server_groups: QUOTAS.server_groups,
    server_group_members: QUOTAS.server_group_members,
  };
}
