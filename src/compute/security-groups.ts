/**
 * Security groups as novabox has them: one `default` group per project, and it is what
 * the bridge network really does: ingress from anywhere, egress anywhere (the bridge and
 * its forward chain filter nothing; NAT only hides the servers from outside). There are
 * no other groups and no rules to add: novabox does not enforce per-server allow-lists,
 * so it does not pretend to (creating or changing groups is refused).
 */
import { BadRequest, NotFound, NovaboxError } from '../errors.js';
import type { Caller } from './servers.js';

export interface SecurityGroup {
  id: string;
  name: 'default';
  description: string;
  projectId: string;
  /** Nova's proxy shows ingress rules only: one, everything from everywhere */
  rules: { id: string; protocol: null; fromPort: null; toPort: null; cidr: string }[];
}

/** A stable UUID per project (project ids are 32 hex digits). */
function uuidOf(hex32: string, salt: string): string {
  const h = (hex32.replace(/[^0-9a-f]/g, '') + salt + '0'.repeat(32)).slice(0, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function defaultGroup(projectId: string): SecurityGroup {
  const id = uuidOf(projectId, '');
  return {
    id,
    name: 'default',
    projectId,
    description:
      "Default security group: novabox's bridge network lets every server talk to and from anywhere; it has no other groups or rules",
    rules: [{ id: uuidOf(projectId.split('').reverse().join(''), ''), protocol: null, fromPort: null, toPort: null, cidr: '0.0.0.0/0' }],
  };
}

/** A group by id or name, visible to the caller (its project's default; an admin sees any project's by id). */
export function findGroup(ref: string, caller: Caller, projectOf?: (groupId: string) => string | undefined): SecurityGroup {
  const own = defaultGroup(caller.projectId);
  if (ref === own.id || ref === own.name) return own;
  const other = caller.isAdmin ? projectOf?.(ref) : undefined;
  if (other) return defaultGroup(other);
  throw new NotFound(`Security group ${ref} not found.`);
}

export class FixedSecurityGroups extends NovaboxError {
  readonly status = 403;
  constructor(what: string) {
    super(
      'permission',
      `novabox cannot ${what}: every server is in its project's "default" group, which is what its bridge network does (traffic to and from anywhere); it enforces no other groups or rules`,
    );
  }
}

/** addSecurityGroup: `default` is where the server is already (a no-op); any other is unknown. */
export function checkAddGroup(name: string, caller: Caller): void {
  findGroup(name, caller);
}

/** removeSecurityGroup: the server cannot leave `default` (its network has no other policy). */
export function checkRemoveGroup(name: string, caller: Caller): never {
  findGroup(name, caller);
  throw new BadRequest(
    `novabox cannot remove server from security group ${name}: every server stays in its project's "default" group (the bridge network has no other policy)`,
  );
}
