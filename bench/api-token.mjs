// bench/api-token.mjs - a project-scoped Keystone token from a `novabox serve` (the bench clients' one login).
export async function scopedToken(base, user, password, project = 'admin') {
  const r = await fetch(`${base}/identity/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
        scope: { project: { name: project, domain: { name: 'Default' } } },
      },
    }),
  });
  if (r.status !== 201) throw new Error(`token: HTTP ${r.status}`);
  return r.headers.get('x-subject-token');
}
