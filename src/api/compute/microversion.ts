/** Nova's microversion negotiation: OpenStack-API-Version first, then X-OpenStack-Nova-API-Version. */
import type { FastifyRequest } from 'fastify';
import { BadRequest } from '../../errors.js';
import { ApiError } from '../faults.js';
import { MAX_MICROVERSION, MICROVERSION, versionAtLeast } from './views.js';

export function parseMicroversion(headers: FastifyRequest['headers']): string {
  const h = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  let v = h('openstack-api-version');
  if (v !== undefined) {
    const m = /^\s*compute\s+(\S+)\s*$/i.exec(v.split(',').find((x) => /^\s*compute\s/i.test(x)) ?? '');
    v = m?.[1];
  }
  v ??= h('x-openstack-nova-api-version');
  if (v === undefined) return MICROVERSION;
  if (v.toLowerCase() === 'latest') return MAX_MICROVERSION;
  if (!/^\d+\.\d+$/.test(v)) throw new BadRequest(`Invalid microversion "${v}": expected e.g. ${MICROVERSION}`);
  if (v === '2.0') return MICROVERSION; // the v2.0 API is 2.1's bodies here
  const norm = v.split('.').map(Number).join('.');
  if (!versionAtLeast(norm, MICROVERSION) || !versionAtLeast(MAX_MICROVERSION, norm)) {
    throw new ApiError(406, `Version ${v} is not supported by the API. Minimum is ${MICROVERSION} and maximum is ${MAX_MICROVERSION}.`);
  }
  return norm;
}

/** The microversion of a compute request (the preHandler checked it already). */
export function microversionOf(req: FastifyRequest): string {
  return parseMicroversion(req.headers);
}
