/** POST /servers/{id}/action: one compute call per Nova action; long ones finish in the background. */
import type { FastifyInstance } from 'fastify';
import { BadRequest, Conflict } from '../../errors.js';
import type { Caller } from '../../compute/servers.js';
import type { Server } from '../../model/records.js';
import { ApiError } from '../faults.js';
import { baseUrl, requireAdmin } from '../request.js';
import { int, ipAddress, isObject, metadata, onlyKeys, str } from '../validate.js';
import { serverBasic } from './views.js';
import { checkAddGroup, checkRemoveGroup } from '../../compute/security-groups.js';
import { type ComputeCtx, type Req, claimed, imageOfRef, newAdminPass } from './context.js';

export function registerActions(app: FastifyInstance, ctx: ComputeCtx): void {
  const { deps, compute, store, log, blocking, caller, server, viewCtx, flavorFor } = ctx;
  app.post('/v2.1/servers/:id/action', async (req: Req, reply) => {
    const s = server(req);
    const c = caller(req);
    if (!isObject(req.body) || Object.keys(req.body).length !== 1) {
      throw new BadRequest('The action body must be a JSON object with exactly one action, e.g. {"os-stop": null}');
    }
    const [action, arg] = Object.entries(req.body)[0]!;
    const done = () => reply.code(202).send();
    switch (action) {
      case 'os-start':
        await claimed(compute.start(s.id, c), log, `start ${s.id}`);
        return done();
      case 'os-stop':
        await blocking.run({ op: 'stop', id: s.id, caller: c });
        return done();
      case 'reboot': {
        if (!isObject(arg)) throw new BadRequest('Invalid input for field/attribute reboot. Expected {"type": "SOFT"|"HARD"}');
        const type = str(arg, 'type', { required: true });
        if (type !== 'SOFT' && type !== 'HARD')
          throw new BadRequest(`Invalid input for field/attribute type. Value: ${type}. It must be SOFT or HARD`);
        await blocking.run({ op: 'reboot', id: s.id, caller: c, hard: type === 'HARD' });
        return done();
      }
      case 'pause':
        compute.pause(s.id, c);
        return done();
      case 'unpause':
        compute.unpause(s.id, c);
        return done();
      case 'lock':
        compute.lock(s.id, c);
        return done();
      case 'unlock':
        compute.unlock(s.id, c);
        return done();
      case 'os-getConsoleOutput': {
        const o = isObject(arg) ? arg : {};
        const length = o.length === undefined || o.length === null ? -1 : int(o, 'length', { min: -1 })!;
        return { output: consoleTail(compute.consoleLog(s.id, c), length) };
      }
      case 'suspend':
        compute.suspend(s.id, c);
        return done();
      case 'resume':
        compute.resume(s.id, c);
        return done();
      case 'createImage': {
        if (!isObject(arg)) throw new BadRequest('Invalid input for field/attribute createImage. Expected {"name": "..."}');
        const name = str(arg, 'name', { required: true, min: 1, max: 255 })!;
        const meta = metadata(arg, 'metadata') ?? {};
        if (!deps.snapshot) throw new ApiError(501, 'createImage needs the image store');
        let imageId: string | undefined;
        await claimed(
          deps.snapshot({ server: s.id, name, properties: meta, onRecord: (r) => (imageId = r.id) }, c),
          log,
          `createImage of ${s.id}`,
        );
        return reply
          .code(202)
          .header('Location', `${baseUrl(req)}/image/v2/images/${imageId}`)
          .send();
      }
      case 'rebuild': {
        if (!isObject(arg)) throw new BadRequest('Invalid input for field/attribute rebuild. Expected {"imageRef": "<image id>"}');
        onlyKeys(arg, 'rebuild', [
          'imageRef',
          'name',
          'metadata',
          'adminPass',
          'accessIPv4',
          'accessIPv6',
          'OS-DCF:diskConfig',
          'preserve_ephemeral',
        ]);
        const ref = str(arg, 'imageRef', { required: true, min: 1 })!;
        const image = imageOfRef(deps, ref, c);
        const name = str(arg, 'name', { min: 1, max: 255 });
        const meta = metadata(arg, 'metadata');
        const v4 = ipAddress(arg, 'accessIPv4', 4);
        const v6 = ipAddress(arg, 'accessIPv6', 6);
        const adminPass = str(arg, 'adminPass') ?? newAdminPass();
        lockCheck(s, c);
        await claimed(compute.rebuild(s.id, image.id, c), log, `rebuild ${s.id}`);
        if (name !== undefined || v4 !== undefined || v6 !== undefined) compute.rename(s.id, { name, accessIpv4: v4, accessIpv6: v6 }, c);
        if (meta !== undefined) compute.replaceProperties(s.id, meta, c);
        const now = store.servers.get(s.id)!;
        return reply.code(202).send({ server: { ...serverBasic(now, viewCtx(req, now)), adminPass } });
      }
      case 'createBackup': {
        if (!isObject(arg))
          throw new BadRequest('Invalid input for field/attribute createBackup. Expected {"name", "backup_type", "rotation"}');
        onlyKeys(arg, 'createBackup', ['name', 'backup_type', 'rotation', 'metadata']);
        const name = str(arg, 'name', { required: true, min: 1, max: 255 })!;
        const type = str(arg, 'backup_type', { required: true })!;
        const rotation = int(arg, 'rotation', { required: true, min: 0 })!;
        const meta = metadata(arg, 'metadata') ?? {};
        if (!deps.snapshot) throw new ApiError(501, 'createBackup needs the image store');
        let imageId: string | undefined;
        await claimed(
          deps.snapshot({ server: s.id, name, properties: meta, backup: { type, rotation }, onRecord: (r) => (imageId = r.id) }, c),
          log,
          `createBackup of ${s.id}`,
        );
        // Nova: the new image's Location, unless rotation 0 deletes it at once
        if (rotation > 0) reply.header('Location', `${baseUrl(req)}/image/v2/images/${imageId}`);
        return reply.code(202).send();
      }
      case 'resize': {
        if (!isObject(arg)) throw new BadRequest('Invalid input for field/attribute resize. Expected {"flavorRef": "<flavor id>"}');
        const ref = arg.flavorRef;
        if (typeof ref !== 'string' && typeof ref !== 'number')
          throw new BadRequest("Invalid input for field/attribute flavorRef. 'flavorRef' is a required property");
        const flavor = flavorFor(String(ref), c, true);
        compute.resize(s.id, flavor.id, c);
        return done();
      }
      case 'confirmResize':
        compute.confirmResize(s.id, c);
        return reply.code(204).send();
      case 'revertResize':
        compute.revertResize(s.id, c);
        return done();
      case 'addSecurityGroup':
      case 'removeSecurityGroup': {
        const name = isObject(arg) ? str(arg, 'name', { required: true, min: 1 })! : undefined;
        if (name === undefined) throw new BadRequest(`Invalid input for field/attribute ${action}. Expected {"name": "<group>"}`);
        if (action === 'addSecurityGroup') checkAddGroup(name, c);
        else checkRemoveGroup(name, c);
        return done();
      }
      case 'migrate':
      case 'os-migrateLive':
        requireAdmin(c, `os_compute_api:os-migrate-server:${action}`);
        // Nova checks the server's state before scheduling: its own conflict comes first
        compute.checkMigratable(s.id, c, action);
        // serve knows no other host (Nova's scheduler found none): the CLI moves servers between hosts
        throw new BadRequest(
          `No valid host was found. This novabox serve knows no other host to ${action === 'migrate' ? 'migrate' : 'live-migrate'} to: on this host, run "novabox server migrate ${s.name} --to ssh://HOST".`,
        );
      case 'forceDelete':
      case 'restore':
        throw new Conflict(`Cannot '${action}' instance ${s.id} while it is in vm_state ${s.vmState}`);
      case 'os-resetState': {
        requireAdmin(c, 'os_compute_api:os-admin-actions:reset_state');
        const state = isObject(arg) ? str(arg, 'state', { required: true }) : undefined;
        if (state !== 'active' && state !== 'error')
          throw new BadRequest('Invalid input for field/attribute state: it must be "active" or "error"');
        compute.resetState(s.id, state, c);
        return done();
      }
      default:
        throw new BadRequest(`There is no such action: ${action}`);
    }
  });

  function lockCheck(s: Server, c: Caller): void {
    if (s.locked && !c.isAdmin) throw new Conflict(`Instance ${s.id} is locked`);
  }
}

/** Nova: length -1/absent = all; else '\\n'.join(log.split('\\n')[-N:]). */
export function consoleTail(log: string, length: number): string {
  if (length < 0) return log;
  if (length === 0) return '';
  return log.split('\n').slice(-length).join('\n');
}
