/** Keystone's JSON: version document, token body with its catalog, resources. Pure. */
import type { Token } from '../../identity/service.js';
import { keystoneTime } from '../../identity/service.js';
import { DEFAULT_DOMAIN, type Project, type Role, type User } from '../../model/records.js';

export const REGION = 'RegionOne';

export function versionV3(base: string) {
  return {
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${base}/identity/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

/** Identity, compute and image: no network service, so the client never asks Neutron. */
export function catalog(base: string) {
  const service = (type: string, name: string, url: string) => ({
    id: `${name}-service`,
    type,
    name,
    endpoints: ['public', 'internal', 'admin'].map((iface) => ({
      id: `${name}-${iface}`,
      interface: iface,
      region: REGION,
      region_id: REGION,
      url,
    })),
  });
  return [
    service('identity', 'keystone', `${base}/identity`),
    service('compute', 'nova', `${base}/compute/v2.1`),
    service('image', 'glance', `${base}/image`),
  ];
}

const domainRef = { id: DEFAULT_DOMAIN.id, name: DEFAULT_DOMAIN.name };

export function tokenBody(t: Token, base: string, withCatalog: boolean): Record<string, unknown> {
  const token: Record<string, unknown> = {
    methods: t.methods,
    user: { id: t.user.id, name: t.user.name, domain: domainRef, password_expires_at: null },
    audit_ids: [t.auditId],
    issued_at: keystoneTime(t.issuedAt),
    expires_at: keystoneTime(t.expiresAt),
  };
  if (t.project) {
    token.project = { id: t.project.id, name: t.project.name, domain: domainRef };
    token.is_domain = false;
    token.roles = t.roles.map((r) => ({ id: r.id, name: r.name }));
    if (withCatalog) token.catalog = catalog(base);
  } else if (t.domainId) {
    token.domain = domainRef;
    token.roles = t.roles.map((r) => ({ id: r.id, name: r.name }));
    if (withCatalog) token.catalog = catalog(base);
  }
  return { token };
}

export function domainView(base: string) {
  return {
    id: DEFAULT_DOMAIN.id,
    name: DEFAULT_DOMAIN.name,
    description: 'The default domain',
    enabled: true,
    tags: [],
    options: {},
    links: { self: `${base}/identity/v3/domains/${DEFAULT_DOMAIN.id}` },
  };
}

export function projectView(p: Project, base: string) {
  return {
    id: p.id,
    name: p.name,
    domain_id: p.domainId,
    description: p.description,
    enabled: p.enabled,
    is_domain: false,
    parent_id: p.domainId,
    tags: [],
    options: {},
    links: { self: `${base}/identity/v3/projects/${p.id}` },
  };
}

export function userView(u: User, base: string) {
  const v: Record<string, unknown> = {
    id: u.id,
    name: u.name,
    domain_id: u.domainId,
    enabled: u.enabled,
    password_expires_at: null,
    options: {},
    links: { self: `${base}/identity/v3/users/${u.id}` },
  };
  if (u.defaultProjectId) v.default_project_id = u.defaultProjectId;
  if (u.email) v.email = u.email;
  if (u.description) v.description = u.description;
  return v;
}

export function roleView(r: Role, base: string) {
  return { id: r.id, name: r.name, domain_id: null, description: null, options: {}, links: { self: `${base}/identity/v3/roles/${r.id}` } };
}
