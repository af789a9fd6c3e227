/**
 * `image pull`: an image from a registry (or an OCI layout, an archive) through skopeo
 * into an OCI layout in a staging dir, then the ordinary importer (layers are
 * content-addressed: one the store holds already is not unpacked again).
 *
 * Idempotent as `podman pull` is: the reference's manifest digest is asked first (one
 * small request); when an image of the name holds that digest already, it is the answer
 * and nothing is copied. A name that holds another image (the tag moved, or an image
 * made otherwise) is refused with a sentence: the user deletes it or picks --name, and a
 * server booted from the old image keeps it. The record is made before the copy (Glance's
 * queued, saving, active) in the transaction that found the name free, so of two pulls of
 * one name at once the second finds the first's record and waits for its outcome.
 *
 * Provenance: `novabox_source=pull`, `novabox_pull_ref` (the reference as given, the tag
 * explicit) and `novabox_pull_digest` (the manifest's, or the index's for a multi-platform
 * image: what `docker://HOST/REPO@DIGEST` pulls again). The copy is pinned to that digest,
 * so a tag pushed meanwhile cannot make the record lie.
 *
 * Every way out removes the staging dir; an abort (the CLI's SIGINT) kills skopeo, or
 * fails the import (its record goes with it), or deletes the image it just made.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadRequest, Conflict, NotFound } from '../errors.js';
import { Staging } from '../images/layers.js';
import type { ImageRecord } from '../images/records.js';
import { defaultImageName, formatPullReference, parsePullReference, pinnedReference } from '../images/reference.js';
import type { ImageCaller, ImageService } from '../images/service.js';
import { copyToLayout, inspectRaw, writeAuthFile, type RegistryAuth } from '../images/skopeo.js';
import { checkImageName } from '../images/store.js';
import { isSameProcess } from '../runtime/proc.js';
import { quote } from '../util/text.js';
import { trace } from '../util/trace.js';

export interface PullRequest {
  /** `docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]` */
  reference: string;
  /** the image's name (default: defaultImageName) */
  name?: string;
  creds?: string;
  authfile?: string;
  tlsVerify: boolean;
}

export interface PullIo {
  /** aborts the pull: nothing of it is kept */
  signal?: AbortSignal;
  /** a terminal for skopeo's progress (else it runs quietly) */
  progressFd?: number;
  /** the import's progress */
  onProgress?: (done: number, total: number) => void;
}

export interface PullResult {
  image: ImageRecord;
  /** the manifest digest the reference named */
  digest: string;
  /** true when an image of the name held that digest already: nothing was copied */
  upToDate: boolean;
}

const LIVE = ['queued', 'saving', 'active', 'deactivated'];
const LAYOUT_REF = 'pulled';

export async function pullImage(images: ImageService, caller: ImageCaller, req: PullRequest, io: PullIo = {}): Promise<PullResult> {
  const ref = parsePullReference(req.reference);
  const name = req.name ?? defaultImageName(ref);
  checkImageName(name);
  if (req.creds !== undefined && req.authfile !== undefined) throw new BadRequest('give --creds or --authfile, not both');
  if (req.creds !== undefined && ref.transport !== 'docker')
    throw new BadRequest(`--creds is for a registry (docker://), not ${ref.transport}:`);
  if (req.creds !== undefined && !/^[^:]+:/.test(req.creds)) throw new BadRequest('invalid --creds: expected USER:PASSWORD');
  if (ref.transport !== 'docker' && !existsSync(ref.path)) throw new NotFound(`no such file or directory: ${ref.path}`);
  if (req.authfile !== undefined && !existsSync(req.authfile)) throw new NotFound(`no such auth file: ${req.authfile}`);
  const auth: RegistryAuth = { creds: req.creds, authfile: req.authfile, tlsVerify: req.tlsVerify };
  const aborted = () => {
    if (io.signal?.aborted) throw io.signal.reason;
  };

  const staging = new Staging('pull');
  try {
    let authFile = req.authfile;
    if (req.creds !== undefined && ref.transport === 'docker') {
      authFile = staging.path('auth.json');
      writeAuthFile(authFile, ref.registry, req.creds);
    }
    const tmpDir = staging.newDir('tmp');
    const raw = await inspectRaw(ref, auth, authFile, { signal: io.signal, tmpDir });
    const digest = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
    trace('pull: manifest digest');
    aborted();

    // the record first (queued, then saving, then active: `image list` shows the pull), made
    // in the transaction that found the name free: a pull of the same name at once finds it
    // and waits for this one's outcome (and tries again if it fails)
    let rec: ImageRecord | undefined;
    for (let attempt = 0; !rec; attempt++) {
      const claim = images.store.tx(() => {
        const named = images.list({ name }, caller).filter((i) => LIVE.includes(i.status));
        const existing = named.find((i) => i.properties.novabox_pull_digest === digest) ?? named[0];
        if (existing) return { existing };
        const props = { novabox_pull_ref: formatPullReference(ref), novabox_pull_digest: digest };
        return { rec: images.beginImport({ name, properties: props }, caller) };
      });
      if (claim.rec) rec = claim.rec;
      else {
        const done = await settle(images, claim.existing, name, digest, io.signal);
        if (done) return done;
        if (attempt >= 2) throw new Conflict(`other pulls of ${quote(name)} failed meanwhile: pull again`);
      }
    }
    const layout = staging.path('layout');
    try {
      await copyToLayout(pinnedReference(ref, digest), layout, LAYOUT_REF, auth, authFile, {
        signal: io.signal,
        progressFd: io.progressFd,
        tmpDir,
      });
      aborted();
      trace('pull: copied');
    } catch (err) {
      images.removeRecord(rec.id);
      throw err;
    }
    const image = await images.importOwned(rec.id, layout, {
      format: 'oci',
      ref: LAYOUT_REF,
      source: 'pull',
      onProgress: io.onProgress,
      signal: io.signal, // an abort fails the import: it removes its record and staged layers
    });
    if (io.signal?.aborted) {
      images.delete(image.id, caller);
      throw io.signal.reason;
    }
    return { image, digest, upToDate: false };
  } finally {
    staging.remove();
  }
}

/**
 * The name is taken: by this digest (the answer, once another pull of it is done;
 * undefined when that pull failed), or by another image (refused).
 */
async function settle(
  images: ImageService,
  img: ImageRecord,
  name: string,
  digest: string,
  signal?: AbortSignal,
): Promise<PullResult | undefined> {
  if (img.properties.novabox_pull_digest !== digest) {
    const from = img.properties.novabox_pull_digest
      ? `it holds ${img.properties.novabox_pull_digest} of ${img.properties.novabox_pull_ref}, the reference now names ${digest}`
      : `image ${img.id} was not pulled`;
    throw new Conflict(`an image named ${quote(name)} exists already (${from}): delete it or pull with --name`);
  }
  for (let cur: ImageRecord | undefined = img; ; cur = images.repo.get(img.id)) {
    if (cur?.status === 'active') return { image: cur, digest, upToDate: true };
    const owner = cur && cur.taskOwnerPid !== null && isSameProcess(cur.taskOwnerPid, cur.taskOwnerStart);
    if (!cur || (cur.status !== 'queued' && cur.status !== 'saving') || !owner) return undefined;
    await sleep(100, undefined, { signal });
  }
}
