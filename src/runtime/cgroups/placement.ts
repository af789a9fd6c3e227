/**
 * How a new container init gets into its cgroup without waiting on the kernel.
 *
 * Moving a whole process (a pid written to cgroup.procs, v1 or v2) takes the kernel's
 * global cgroup threadgroup rwsem for writing, and that write lock first waits out an RCU
 * grace period: 5-28 ms per start on this 2-CPU host, the largest single cost of a start.
 * Two ways around it, both taken here:
 *
 * - cgroup v2 (pure, or the cgroup2 mount of a hybrid host): clone3(2) with
 *   CLONE_INTO_CGROUP creates the init inside its directory (LaunchPlan.cgroupDir);
 * - cgroup v1 hierarchies: the init joins them itself, writing "0" to each `tasks` file
 *   as its first ops ('cgroup-join'). A thread moving only itself needs no threadgroup
 *   lock (kernel/cgroup/cgroup.c, cgroup_procs_write_start), and the init is one thread.
 *
 * Without clone3 (Linux < 5.7) the monitor writes the init's pid to the directory's
 * cgroup.procs itself, before the init may run its first op; so the CLI writes
 * cgroup.procs only for a plan that places nothing itself (see mustPlaceAfterClone), and
 * otherwise may let the init run its ops before NB_EV_PID (placesItself).
 */
import type { CgroupStep, LaunchPlan, Op } from '../../sys/ops.js';
import type { CgroupLayout } from './types.js';
import { V1_CONTROLLERS } from './v1.js';
import { pushLevelSteps, sub } from './batch.js';

export interface Placement {
  /** cgroup2 directory to clone the init into */
  cloneInto?: string;
  /** v1 `tasks` files the init writes "0" to before anything else */
  selfJoin: string[];
}

export function placementFor(layout: CgroupLayout, path: string): Placement {
  // plain concatenation (sub): mount points and checked cgroup paths are normal already,
  // and node:path's join costs ~15-20 us a call in the cold start path
  if (layout.kind === 'v2') return { cloneInto: sub(layout.root, path), selfJoin: [] };
  const selfJoin: string[] = [];
  const seen: string[] = []; // co-mounted controllers (cpu,cpuacct) share one hierarchy
  for (const c of V1_CONTROLLERS) {
    const m = layout.mounts[c];
    if (!m || seen.includes(m)) continue;
    seen.push(m);
    selfJoin.push(`${sub(m, path)}/tasks`);
  }
  return { cloneInto: layout.kind === 'hybrid' && layout.unified ? sub(layout.unified, path) : undefined, selfJoin };
}

/**
 * The plan with its placement: the clone target, and the joins first of all ops (before
 * the init unshares its cgroup namespace, which is rooted where the init then is).
 */
export function placeLaunch(plan: LaunchPlan, layout: CgroupLayout, path: string): LaunchPlan {
  const p = placementFor(layout, path);
  const ops: Op[] = [];
  for (const file of p.selfJoin) ops.push({ op: 'cgroup-join', path: file });
  for (const op of plan.ops) ops.push(op);
  return { ...plan, cgroupDir: p.cloneInto, ops };
}

/**
 * Does the init get into its cgroups with no help from the CLI: a cgroup2 directory the
 * monitor clones it into (or places it in, before its first op), and/or v1 `tasks` files it
 * joins as its first ops? Then `run` releases it ('R') as soon as its directory exists.
 */
export function placesItself(plan: LaunchPlan): boolean {
  return plan.cgroupDir !== undefined || plan.ops.some((op) => op.op === 'cgroup-join');
}

/**
 * After NB_EV_PID: must the CLI write the init's pid to cgroup.procs? When the plan places
 * nothing itself (a plan without placeLaunch), or when a cgroup2 directory was asked for
 * and the init is not in it: a `server exec` whose clone3 into the server's cgroup was
 * refused (cgroup2 mounted with nsdelegate refuses it from inside the server's cgroup
 * namespace, where the monitor is by then). A new container's monitor places a plain-cloned
 * init itself, or fails with NB_STAGE_PLACE. Writing every hierarchy is harmless for the
 * v1 ones the init also joins.
 */
export function mustPlaceAfterClone(plan: LaunchPlan, clonedInto: boolean): boolean {
  if (clonedInto) return false;
  return plan.cgroupDir !== undefined || !plan.ops.some((op) => op.op === 'cgroup-join');
}

/**
 * Pure cgroup v2: the container's root in its own user namespace owns its cgroup (the
 * directory, cgroup.procs, cgroup.threads, cgroup.subtree_control), the delegation
 * systemd's cgroups.md describes, so that a systemd inside may make its own subtree.
 * cgroup v1 hierarchies stay the host's: the container cannot change its limits there.
 */
export function delegationSteps(layout: CgroupLayout, path: string, uid: number, gid: number): CgroupStep[] {
  if (layout.kind !== 'v2') return [];
  const dir = sub(layout.root, path);
  return [dir, `${dir}/cgroup.procs`, `${dir}/cgroup.threads`, `${dir}/cgroup.subtree_control`].map((p) => ({
    step: 'chown' as const,
    path: p,
    uid,
    gid,
  }));
}

/**
 * A system container (systemd as pid 1, in its own user namespace) on a cgroup v1 or
 * hybrid host: what LXC gives an unprivileged container there. systemd manages its units
 * in the named `name=systemd` hierarchy (and, on a hybrid host, in the cgroup2 mount beside
 * it), so the server gets a directory of its own in each, owned by its root: the steps
 * make and chown them (before the clone, with the rest of the cgroup), and `joins` are the
 * `tasks` files its init writes "0" to with the other v1 joins. Pure v2 needs nothing more
 * than delegationSteps. The controllers' hierarchies stay the host's (read-only inside).
 */
export function systemDelegation(layout: CgroupLayout, path: string, uid: number, gid: number): { steps: CgroupStep[]; joins: string[] } {
  if (layout.kind === 'v2') return { steps: [], joins: [] };
  const steps: CgroupStep[] = [];
  const joins: string[] = [];
  const chown = (p: string) => steps.push({ step: 'chown', path: p, uid, gid });
  const named = layout.named?.systemd;
  if (named) {
    pushLevelSteps(steps, named, path.split('/'));
    const dir = sub(named, path);
    // the directory only: systemd makes its tree (init.scope, system.slice, ...) below it,
    // owning what it makes; the server's own `tasks` stays host root's, for the init's join
    // (it is host uid 0 then, with no capability over a file the range's root owns)
    chown(dir);
    joins.push(`${dir}/tasks`);
  }
  if (layout.unified) {
    // made with the controllers' levels (CgroupV1Driver.planCreate); the init is born in it
    const dir = sub(layout.unified, path);
    for (const p of [dir, `${dir}/cgroup.procs`, `${dir}/cgroup.threads`, `${dir}/cgroup.subtree_control`]) chown(p);
  }
  return { steps, joins };
}
