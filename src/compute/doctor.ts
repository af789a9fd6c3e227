/**
 * `novabox doctor`: find what crashes left of the bridge network and remove it. Every
 * kernel object carries a deterministic name (runtime/network/names.ts), so nothing can
 * hide: host veths `nbv…` whose ifalias names this state root's bridge, leases whose
 * owner is gone, an nftables table that disagrees with the config, and published-port
 * rules no running server holds.
 */
import { isContainerLive } from '../runtime/container.js';
import { isRunning } from '../runtime/server.js';
import { detach, natPresent, syncNat } from '../runtime/network/bridge.js';
import type { ComputeService } from './servers.js';

export interface Finding {
  kind: 'veth' | 'lease' | 'nat' | 'port' | 'volume-snapshot' | 'volume-copy';
  name: string;
  problem: string;
  fixed: boolean;
}

export function doctor(compute: ComputeService, opts: { dryRun?: boolean } = {}): Finding[] {
  const net = compute.network;
  const store = compute.store;
  const out: Finding[] = [];
  const fix = (f: Omit<Finding, 'fixed'>, act: () => void) => {
    let fixed = false;
    if (!opts.dryRun) {
      try {
        act();
        fixed = true;
      } catch (err) {
        f = { ...f, problem: `${f.problem}; not removed: ${(err as Error).message}` };
      }
    }
    out.push({ ...f, fixed });
  };
  // A server or `run` container owns its veth and lease only while it runs (a veth) or exists (a lease).
  // A task in progress (after the caller's reconcile, only live ones are left) may be making its veth right now.
  const serverRunning = (id: string) => {
    const s = store.servers.get(id);
    return Boolean(s && (s.taskState !== null || isRunning(store.servers.getRuntime(id))));
  };
  const containerRunning = isContainerLive;
  const serverExists = (id: string) => store.servers.get(id) !== undefined;

  for (const v of net.hostVeths()) {
    const owner = v.ownerId;
    if (owner && (serverRunning(owner) || containerRunning(owner))) continue;
    fix({ kind: 'veth', name: v.name, problem: owner ? `veth of ${owner}, which is not running` : 'veth with no owner recorded' }, () => {
      detach(v.name);
    });
  }
  for (const l of store.leases.list()) {
    const alive = l.ownerKind === 'server' ? serverExists(l.ownerId) : containerRunning(l.ownerId);
    if (alive) continue;
    fix({ kind: 'lease', name: l.address, problem: `lease of ${l.ownerKind} ${l.ownerId}, which is gone` }, () => {
      store.leases.release(l.ownerId);
    });
  }
  const spec = net.spec();
  const present = natPresent(spec.bridge);
  if (present !== spec.nat) {
    fix(
      {
        kind: 'nat',
        name: spec.bridge,
        problem: spec.nat ? 'NAT is configured but its nftables table is missing' : 'an nftables table of novabox remains while NAT is off',
      },
      () => {
        syncNat(spec);
      },
    );
  }
  for (const r of compute.ports.orphans()) {
    fix(
      {
        kind: 'port',
        name: `${r.hostIp || '0.0.0.0'}:${r.hostPort}/${r.protocol}`,
        problem: `published-port rule to ${r.address}:${r.port}, which no running server or container holds`,
      },
      () => compute.ports.remove(r),
    );
  }
  for (const id of compute.ports.staleRecords()) {
    fix({ kind: 'port', name: id.slice(0, 12), problem: `published ports of run container ${id.slice(0, 12)}, which is gone` }, () =>
      compute.ports.forget(id),
    );
  }
  for (const s of compute.volumes.staleSnapshots()) {
    fix(
      {
        kind: 'volume-snapshot',
        name: s.name,
        problem: `left creating by process ${s.ownerPid}, which is gone${s.frozenServer ? ` (server ${s.frozenServer} frozen for its copy)` : ''}`,
      },
      () => compute.volumes.sweepSnapshot(s),
    );
  }
  for (const c of compute.volumes.staleCopies()) {
    fix(
      {
        kind: 'volume-copy',
        name: c.name,
        problem: `a copy of ${c.source} left by process ${c.ownerPid}, which is gone${c.frozenServer ? ` (server ${c.frozenServer} frozen for it)` : ''}`,
      },
      () => compute.volumes.sweepCopy(c),
    );
  }
  return out;
}
