/**
 * Deterministic kernel names, so that `novabox doctor` and the next start can find what
 * a crash left: the host end of a container's veth pair is `nbv` + 12 hex digits of its
 * owner's id (IFNAMSIZ: at most 15 characters), and carries an ifalias naming its
 * bridge and owner. Pure.
 */
export const VETH_PREFIX = 'nbv';

export function hostIfName(ownerId: string): string {
  const hex = ownerId.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length < 12) throw new Error(`cannot derive an interface name from ${JSON.stringify(ownerId)}`);
  return VETH_PREFIX + hex.slice(0, 12);
}

/** ifalias of a host end: `novabox <bridge> <owner id>`. */
export function vethAlias(bridge: string, ownerId: string): string {
  return `novabox ${bridge} ${ownerId}`;
}

export function parseVethAlias(alias: string): { bridge: string; ownerId: string } | undefined {
  const m = /^novabox (\S+) (\S+)$/.exec(alias.trim());
  return m ? { bridge: m[1], ownerId: m[2] } : undefined;
}

/** novabox's own nftables table for a bridge (family ip): identifiers allow [A-Za-z0-9_]. */
export function natTable(bridge: string): string {
  return `novabox_${bridge.replace(/[^A-Za-z0-9_]/g, '_')}`;
}
