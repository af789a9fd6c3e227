/**
 * Nova's server groups on one host: `affinity` (and soft-affinity) is met by every
 * server; `anti-affinity` holds one server only, a second member finds no valid host;
 * soft-anti-affinity is a preference, met as well as one host can.
 */
import { BadRequest, NotFound } from '../errors.js';
import type { Store } from '../store/db.js';
import { ServerGroupRepo, type ServerGroup } from '../store/server-groups.js';
export type { ServerGroup } from '../store/server-groups.js';
import { randomUuid } from '../util/random.js';
import type { Caller } from '../model/records.js';

export const GROUP_POLICIES = ['affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity'] as const;
export const NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.';

export class ServerGroupService {
  readonly repo: ServerGroupRepo;

  constructor(readonly store: Store) {
    this.repo = new ServerGroupRepo(store.db);
  }

  create(name: string, policy: string, caller: Caller): ServerGroup {
    if (!name || name.length > 255) throw new BadRequest('Invalid input for field/attribute name: it must be 1 to 255 characters');
    if (!(GROUP_POLICIES as readonly string[]).includes(policy)) {
      throw new BadRequest(`Invalid input for field/attribute policies: "${policy}" is not one of ${GROUP_POLICIES.join(', ')}`);
    }
    return this.repo.insert({ id: randomUuid(), name, projectId: caller.projectId, userId: caller.userId, policy });
  }

  get(id: string, caller: Caller): ServerGroup {
    const g = this.repo.get(id);
    if (!g || (!caller.isAdmin && g.projectId !== caller.projectId)) throw new NotFound(`Instance group ${id} could not be found.`);
    return g;
  }

  list(caller: Caller, allProjects: boolean): ServerGroup[] {
    return this.repo.list(caller.isAdmin && allProjects ? undefined : caller.projectId);
  }

  delete(id: string, caller: Caller): void {
    this.repo.remove(this.get(id, caller).id);
  }

  members(id: string): string[] {
    return this.repo.members(id);
  }

  /**
   * The scheduler's answer for `count` new members of a group on this one host: undefined
   * when they fit, else why not (Nova's NoValidHost). A group of another project is a 400.
   */
  placement(groupId: string, count: number, caller: Caller): string | undefined {
    let g: ServerGroup;
    try {
      g = this.get(groupId, caller);
    } catch {
      throw new BadRequest(`Invalid input for field/attribute group: server group ${groupId} could not be found`);
    }
    if (g.policy === 'anti-affinity' && this.members(g.id).length + count > 1) return NO_VALID_HOST;
    return undefined;
  }

  join(groupId: string, serverId: string): void {
    this.repo.addMember(groupId, serverId);
  }
}
