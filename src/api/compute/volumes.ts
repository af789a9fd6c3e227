/**
 * Nova's os-volume_attachments over novabox's named volumes (compute/volumes.ts): list,
 * show, attach and detach. A volume is a filesystem (a directory or an ext4 image), not
 * a block device: `device` is the path it is mounted at inside the server (required to
 * attach). Attaching or detaching takes a SHUTOFF server or an ACTIVE one (mounted into or
 * unmounted from its namespace at once), as `server add volume` does (409 otherwise).
 */
import type { FastifyInstance } from 'fastify';
import { NotFound } from '../../errors.js';
import type { VolumeRow } from '../../compute/volumes.js';
import { onlyKeys, str, wrapped } from '../validate.js';
import type { ComputeCtx, Req } from './context.js';

function view(v: VolumeRow, serverId: string): Record<string, unknown> {
  return { id: v.id, volumeId: v.id, serverId, device: v.mountPath, tag: null, delete_on_termination: false };
}

export function registerVolumes(app: FastifyInstance, ctx: ComputeCtx): void {
  const { compute, caller } = ctx;
  const attachmentOf = (req: Req) => {
    const s = ctx.server(req);
    const v = compute.volumes.ofServer(s.id).find((x) => x.id === req.params.volumeId);
    if (!v) throw new NotFound(`Volume attachment ${req.params.volumeId} could not be found.`);
    return { s, v };
  };
  app.get('/v2.1/servers/:id/os-volume_attachments', async (req: Req) => {
    const s = ctx.server(req);
    return { volumeAttachments: compute.volumes.ofServer(s.id).map((v) => view(v, s.id)) };
  });
  app.get('/v2.1/servers/:id/os-volume_attachments/:volumeId', async (req: Req) => {
    const { s, v } = attachmentOf(req);
    return { volumeAttachment: view(v, s.id) };
  });
  app.post('/v2.1/servers/:id/os-volume_attachments', async (req: Req) => {
    const s = ctx.server(req);
    const body = wrapped(req.body, 'volumeAttachment');
    onlyKeys(body, 'volumeAttachment', ['volumeId', 'device', 'tag', 'delete_on_termination']);
    const volumeId = str(body, 'volumeId', { required: true, min: 1, max: 255 })!;
    const device = str(body, 'device', { required: true, min: 1, max: 4096 })!;
    const v = compute.addVolume(s.id, volumeId, device, {}, caller(req));
    return { volumeAttachment: view(v, s.id) };
  });
  app.delete('/v2.1/servers/:id/os-volume_attachments/:volumeId', async (req: Req, reply) => {
    const { s, v } = attachmentOf(req);
    compute.removeVolume(s.id, v.id, caller(req));
    return reply.code(202).send();
  });
}
