/**
 * The image service: what the CLI (`novabox image ...`, `server image create`) and the
 * Glance v2 façade call. Glance's model: a record is created `queued`, data makes it
 * `saving`, then `active` (or `killed` when the upload fails); only active images boot.
 * Callers are scoped as Glance scopes them: admins see everything; others see their
 * project's images and public/community ones, and change only their own.
 *
 * Data: content-addressed layers (layers.ts), shared between images and removed when
 * the last image using them goes. An active image is also published as a small JSON
 * ref under images/ (store.ts) so that `novabox run` needs no database.
 */
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BadRequest, Conflict, NotFound, NovaboxError } from '../errors.js';
import type { Store } from '../store/db.js';
import { isSameProcess, readProcStart, selfStart } from '../runtime/proc.js';
import * as native from '../sys/native.js';
import { sha256Hex } from '../sys/layer.js';
import { randomUuid } from '../util/random.js';
import { trace } from '../util/trace.js';
import { DirSource, TarSource, tarStream, type ArchiveMember, type ArchiveSource } from './archive.js';
import {
  MEDIA_CONFIG,
  MEDIA_INDEX,
  SERVER_CMD_LABEL,
  MEDIA_MANIFEST,
  formatFromDir,
  formatFromEntries,
  hostArch,
  parseDockerManifest,
  parseImageConfig,
  parseLxcMetadata,
  parseManifest,
  pickManifest,
  type ImportFormat,
} from './formats.js';
import {
  MEDIA_TAR,
  MEDIA_TAR_GZIP,
  MEDIA_TAR_ZSTD,
  Staging,
  blobPath,
  compressionOf,
  decompressor,
  dropDeviceNodes,
  extractLayer,
  fileStream,
  installLayer,
  layerPath,
  packLayer,
  readHead,
  retireLayer,
  sweepTmp,
  type Compression,
} from './layers.js';
import { ImageRepo, type ImageRecord, type NewImage, type Visibility } from './records.js';
import { checkImageName, ensureLayers, removeImageRef, republishConfig, republishName, writeImage, type ImageConfig } from './store.js';
import { applyConfigPatch, type ConfigPatch } from './config-edit.js';
import { firstEntries } from './tarstream.js';
import {
  type BuildIo,
  type DebianBuildInput,
  Interrupted,
  checkDebianBuild,
  debianRootfs,
  debootstrapScripts,
  rootfsProperties,
} from './debootstrap.js';
import { BUSYBOX_CONFIG, buildBusyboxLayer } from './busybox.js';
import { quote } from '../util/text.js';

/** The image tier's inner pieces a front end uses: this module is the tier's one door for them. */
export { Staging } from './layers.js';
export { DEFAULT_CACHE_DIR, DEFAULT_MIRROR, DEFAULT_PACKAGES, Interrupted, VARIANTS } from './debootstrap.js';

export interface DebianBuildOptions extends BuildIo {
  cacheDir: string;
  noCache: boolean;
}

export interface DebianBuildResult {
  image: ImageRecord;
  /** the rootfs came from the cache */
  cached: boolean;
  key: string;
  seconds: number;
}
export type { ImageRecord } from './records.js';

export interface ImageCaller {
  projectId: string;
  userId: string;
  isAdmin: boolean;
}

export interface ImageFilters {
  name?: string;
  status?: string;
  visibility?: Visibility | 'all';
  owner?: string;
  /** property key=value pairs that must all match */
  properties?: Record<string, string>;
  limit?: number;
  marker?: string;
}

export interface CreateImageRequest {
  name: string;
  id?: string;
  visibility?: Visibility;
  diskFormat?: string;
  containerFormat?: string;
  properties?: Record<string, string>;
  tags?: string[];
  minDisk?: number;
  minRam?: number;
  protected?: boolean;
}

export interface ImportOptions {
  format?: ImportFormat;
  /** device nodes in the archive are allowed */
  trusted?: boolean;
  /** which image of a multi-image OCI layout / docker archive */
  ref?: string;
  /** progress: bytes read so far, of total */
  onProgress?: (done: number, total: number) => void;
  /** novabox_source to record (default: the format read, as `oci`) */
  source?: string;
  /** stops an OCI layout's import between and inside layers; nothing of it is kept */
  signal?: AbortSignal;
}

export type ImagePatch = Partial<
  Pick<ImageRecord, 'name' | 'visibility' | 'protected' | 'minDisk' | 'minRam' | 'tags' | 'diskFormat' | 'containerFormat'>
> & {
  properties?: Record<string, string>;
  removeProperties?: string[];
  /** the runtime configuration (images/config-edit.ts), checked already */
  config?: ConfigPatch;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LIVE: string[] = ['queued', 'saving', 'active', 'deactivated'];
/** novabox_source of an image whose data is stored as given (not a root filesystem): it never boots */
export const DATA_SOURCE = 'data';

interface Layered {
  diffId: string;
  blob: { digest: string; file: string; mediaType: string; size: number };
  size: number;
  /** staged layer dir; undefined when the layer is already in the store */
  dir?: string;
}

export class ImageService {
  readonly repo: ImageRepo;

  constructor(readonly store: Store) {
    this.repo = new ImageRepo(store.db, store.tx);
    this.reconcile();
  }

  localCaller(): ImageCaller {
    return { projectId: this.store.getSetting('local_project_id')!, userId: this.store.getSetting('local_user_id')!, isAdmin: true };
  }

  /**
   * Repair what a killed command left: an image still `queued` or `saving` by a process
   * that is gone becomes `killed` (never active), and staging dirs of dead processes are
   * removed. Queued records nobody owns (Glance's, waiting for an upload) stay.
   */
  reconcile(): void {
    sweepTmp();
    const stale = this.store.db
      .prepare<{ id: string; task_owner_pid: number | null; task_owner_start: number | null }>(
        "SELECT id, task_owner_pid, task_owner_start FROM images WHERE status IN ('queued', 'saving') AND task_owner_pid IS NOT NULL",
      )
      .all()
      .filter((r) => r.task_owner_pid !== null && !isSameProcess(r.task_owner_pid, r.task_owner_start));
    for (const r of stale) {
      this.store.tx(() => {
        const cur = this.repo.get(r.id);
        if ((cur?.status !== 'saving' && cur?.status !== 'queued') || cur.taskOwnerPid !== r.task_owner_pid) return;
        this.repo.setLayers(r.id, []);
        this.repo.update(r.id, { status: 'killed', taskOwnerPid: null, taskOwnerStart: null });
      });
    }
  }

  // ---- lookups ---------------------------------------------------------------------

  private visible(img: ImageRecord, caller: ImageCaller): boolean {
    return caller.isAdmin || img.owner === caller.projectId || img.visibility === 'public' || img.visibility === 'community';
  }

  private mayChange(img: ImageRecord, caller: ImageCaller): void {
    if (!caller.isAdmin && img.owner !== caller.projectId) throw new NovaboxError('permission', `you may not change image ${img.id}`);
  }

  /** By id, then by name (the live image of that name). */
  show(ref: string, caller: ImageCaller): ImageRecord {
    let img = UUID.test(ref) ? this.repo.get(ref) : undefined;
    if (img && !this.visible(img, caller)) img = undefined;
    if (!img) {
      // names are free text and may repeat (Glance): a name must be unambiguous
      const named = this.repo.allByName(ref).filter((i) => this.visible(i, caller));
      const live = named.filter((i) => LIVE.includes(i.status));
      const pick = live.length ? live : named.slice(0, 1);
      if (pick.length > 1) {
        throw new Conflict(`more than one image is named ${JSON.stringify(ref)}: ${pick.map((i) => i.id).join(', ')}; use the id`);
      }
      img = pick[0];
    }
    if (!img && ref === 'busybox') img = this.ensureBuiltin();
    if (!img || !this.visible(img, caller)) throw new NotFound(`image ${JSON.stringify(ref)} not found`);
    return img;
  }

  list(f: ImageFilters, caller: ImageCaller): ImageRecord[] {
    let rows = this.repo.list().filter((i) => this.visible(i, caller) && i.status !== 'deleted');
    if (f.name !== undefined) rows = rows.filter((i) => i.name === f.name);
    if (f.status) rows = rows.filter((i) => i.status === f.status!.toLowerCase());
    if (f.visibility && f.visibility !== 'all') rows = rows.filter((i) => i.visibility === f.visibility);
    if (f.owner) rows = rows.filter((i) => i.owner === f.owner);
    for (const [k, v] of Object.entries(f.properties ?? {})) rows = rows.filter((i) => i.properties[k] === v);
    if (f.marker) {
      const at = rows.findIndex((i) => i.id === f.marker);
      if (at < 0) throw new BadRequest(`marker ${f.marker} not found`);
      rows = rows.slice(at + 1);
    }
    if (f.limit !== undefined) rows = rows.slice(0, f.limit);
    return rows;
  }

  /** What the runtime needs to boot an active image. */
  async bootable(ref: string, caller: ImageCaller): Promise<{ record: ImageRecord; layerDirs: string[]; config: ImageConfig }> {
    const img = this.show(ref, caller);
    if (img.status !== 'active') throw new Conflict(`image "${img.name}" is ${img.status}, not active`);
    await ensureLayers({ name: img.name, layers: img.layers, config: img.config, created: img.createdAt });
    return { record: img, layerDirs: img.layers.map(layerPath).reverse(), config: img.config };
  }

  // ---- create ----------------------------------------------------------------------

  createRecord(req: CreateImageRequest, caller: ImageCaller): ImageRecord {
    checkImageName(req.name);
    if (req.id !== undefined && !UUID.test(req.id)) throw new BadRequest(`invalid image id ${quote(req.id)}: expected a UUID`);
    if (req.id && this.repo.get(req.id)) throw new Conflict(`an image with id ${req.id} already exists`);
    for (const [k, v] of Object.entries(req.properties ?? {})) checkProperty(k, v);
    if (req.visibility === 'public' && !caller.isAdmin)
      throw new NovaboxError('permission', 'only an administrator may publish public images');
    return this.repo.insert({
      id: req.id ?? randomUuid(),
      name: req.name,
      owner: caller.projectId,
      status: 'queued',
      visibility: req.visibility ?? 'shared',
      diskFormat: req.diskFormat ?? 'raw',
      containerFormat: req.containerFormat ?? 'bare',
      properties: req.properties ?? {},
      tags: req.tags ?? [],
      minDisk: req.minDisk ?? 0,
      minRam: req.minRam ?? 0,
      protected: req.protected ?? false,
      config: { cmd: [], env: [], workingDir: '/', user: '' },
    });
  }

  /** `image create --file`: record + data in one go; on failure nothing is left. */
  async importFile(file: string, req: CreateImageRequest, caller: ImageCaller, opts: ImportOptions = {}): Promise<ImageRecord> {
    if (!existsSync(file)) throw new NotFound(`no such file or directory: ${file}`);
    const img = this.beginImport(req, caller);
    return this.importInto(img, file, opts, 'remove');
  }

  /** A queued record owned by this process (`image pull` makes it before the copy); importOwned fills it. */
  beginImport(req: CreateImageRequest, caller: ImageCaller): ImageRecord {
    const img = this.createRecord(req, caller);
    return this.repo.update(img.id, { taskOwnerPid: process.pid, taskOwnerStart: readProcStart(process.pid) ?? 0 });
  }

  /** The data of a record beginImport made; on failure the record is removed. */
  async importOwned(id: string, file: string, opts: ImportOptions = {}): Promise<ImageRecord> {
    const img = this.repo.get(id);
    if (!img) throw new NotFound(`image ${id} not found`);
    return this.importInto(img, file, opts, 'remove');
  }

  /**
   * Glance's upload: the data of a queued image, from a stream (the HTTP body). It is
   * spooled to disk (never held in memory) and imported as a file; its md5 is Glance's
   * checksum. A failed upload leaves the image `killed`.
   */
  async upload(ref: string, data: Readable, caller: ImageCaller, opts: ImportOptions = {}): Promise<ImageRecord> {
    const img = this.show(ref, caller);
    this.mayChange(img, caller);
    if (img.status !== 'queued') throw new Conflict(`image ${img.id} is ${img.status}: data can only be uploaded once, to a queued image`);
    const staging = new Staging('upload');
    try {
      const file = staging.path('data');
      const md5 = createHash('md5');
      this.claim(img.id, 'queued');
      await pipeline(
        data,
        async function* (src: AsyncIterable<Buffer>) {
          for await (const chunk of src) {
            md5.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(file),
      );
      const checksum = md5.digest('hex');
      let done: ImageRecord;
      try {
        done = await this.importInto(this.repo.get(img.id)!, file, { ...opts, label: `the data of image ${img.id}` }, 'keep');
      } catch (err) {
        if (!(err instanceof BadRequest)) throw err;
        // Glance stores whatever it is given: data that is no root filesystem novabox can
        // read is kept as is (downloads return it); only booting it fails (compute).
        done = this.activateData(img.id, file, err.message);
      }
      return this.repo.update(done.id, { checksum });
    } catch (err) {
      this.killIfSaving(img.id);
      throw err;
    } finally {
      staging.remove();
    }
  }

  private claim(id: string, from: 'queued' | 'saving'): void {
    this.store.tx(() => {
      const cur = this.repo.get(id);
      if (cur?.status !== from) throw new Conflict(`image ${id} is ${cur?.status ?? 'gone'}`);
      if (cur.taskOwnerPid !== null && cur.taskOwnerPid !== process.pid)
        throw new Conflict(`image ${id} is being saved by another command`);
      this.repo.update(id, { status: 'saving', taskOwnerPid: process.pid, taskOwnerStart: selfStart() });
    });
  }

  private killIfSaving(id: string): void {
    this.store.tx(() => {
      const cur = this.repo.get(id);
      if (cur && (cur.status === 'saving' || cur.status === 'queued'))
        this.repo.update(id, { status: 'killed', taskOwnerPid: null, taskOwnerStart: null });
    });
  }

  private async importInto(
    img: ImageRecord,
    file: string,
    opts: ImportOptions & { label?: string },
    onFail: 'remove' | 'kill' | 'keep',
  ): Promise<ImageRecord> {
    const staging = new Staging('import');
    try {
      if (img.status === 'queued') this.claim(img.id, 'queued');
      const format = opts.format && opts.format !== 'auto' ? opts.format : await detectFormat(file, opts.label);
      trace(`import format ${format}`);
      const total = statSync(file).isDirectory() ? 0 : statSync(file).size;
      let done = 0;
      const onBytes = opts.onProgress ? (n: number) => opts.onProgress!((done += n), total) : undefined;
      let result: { layers: Layered[]; config: ImageConfig; properties: Record<string, string> };
      if (format === 'tar') result = await this.importRootfsTar(file, staging, Boolean(opts.trusted), onBytes);
      else if (format === 'oci' || format === 'docker-archive') result = await this.importLayout(file, format, staging, opts, onBytes);
      else if (format === 'lxc') result = await this.importLxc(file, staging, Boolean(opts.trusted));
      else result = await this.importRootfsDir(file, staging);
      opts.signal?.throwIfAborted();
      return this.activate(img.id, result.layers, result.config, result.properties, opts.source ?? format);
    } catch (err) {
      if (onFail === 'remove') this.store.tx(() => this.repo.remove(img.id));
      else if (onFail === 'kill') this.killIfSaving(img.id);
      throw err;
    } finally {
      staging.remove();
    }
  }

  /** Layers and metadata in place, in one transaction; the image becomes active. */
  private activate(id: string, layers: Layered[], config: ImageConfig, properties: Record<string, string>, source: string): ImageRecord {
    const img = this.store.tx(() => {
      const cur = this.repo.get(id);
      if (cur?.status !== 'saving' || cur.taskOwnerPid !== process.pid)
        throw new Conflict(`image ${id} is no longer being saved by this command`);
      for (const l of layers) {
        // a layer already in the store (a snapshot's inherited layers, known()): nothing to move or record
        const fresh = l.dir !== undefined || l.blob.file !== '';
        if (fresh) installLayer(l.diffId, l.dir, l.blob.file ? { digest: l.blob.digest, file: l.blob.file } : undefined);
        if (!existsSync(layerPath(l.diffId)) && !existsSync(blobPath(l.blob.digest)))
          throw new NovaboxError('internal', `layer ${l.diffId} is missing after install`);
        if (fresh)
          this.repo.addLayer({
            diffId: l.diffId,
            blobDigest: l.blob.digest,
            mediaType: l.blob.mediaType,
            blobSize: l.blob.size,
            size: l.size,
          });
      }
      const diffIds = layers.map((l) => l.diffId);
      this.repo.setLayers(id, diffIds);
      const withLayers = { ...cur, layers: diffIds, config };
      const manifest = ociDocuments(
        withLayers,
        layers.map((l) => this.repo.layer(l.diffId)!),
      );
      const updated = this.repo.update(id, {
        status: 'active',
        config,
        size: layers.reduce((a, l) => a + l.blob.size, 0),
        virtualSize: layers.reduce((a, l) => a + l.size, 0),
        osHashAlgo: 'sha256',
        osHashValue: manifest.manifestDigest.slice(7),
        properties: { ...properties, ...cur.properties, novabox_source: source },
        taskOwnerPid: null,
        taskOwnerStart: null,
      });
      writeImage({ id, name: updated.name, layers: diffIds, config, created: updated.createdAt });
      return updated;
    });
    return img;
  }

  /**
   * Uploaded data that is no root filesystem: one blob (content-addressed like a layer, so
   * delete removes it as it removes layers), no layer directory, no runtime file. Glance's
   * `active`; compute refuses to boot it with `why` (the reason names no host file).
   */
  private activateData(id: string, file: string, why: string): ImageRecord {
    const digest = `sha256:${hashFile(file, 'sha256')}`;
    const size = statSync(file).size;
    return this.store.tx(() => {
      const cur = this.repo.get(id);
      if (cur?.status !== 'saving' || cur.taskOwnerPid !== process.pid)
        throw new Conflict(`image ${id} is no longer being saved by this command`);
      installLayer(digest, undefined, { digest, file });
      this.repo.addLayer({ diffId: digest, blobDigest: digest, mediaType: MEDIA_DATA, blobSize: size, size });
      this.repo.setLayers(id, [digest]);
      return this.repo.update(id, {
        status: 'active',
        size,
        virtualSize: null,
        osHashAlgo: 'sha256',
        osHashValue: digest.slice(7),
        properties: { ...cur.properties, novabox_source: DATA_SOURCE, novabox_unbootable: why },
        taskOwnerPid: null,
        taskOwnerStart: null,
      });
    });
  }

  private known(diffId: string | undefined): Layered | undefined {
    if (!diffId) return undefined;
    const l = this.repo.layer(diffId);
    // a snapshot's layer may exist as its blob only until its first boot (materialize.ts)
    if (!l || !existsSync(blobPath(l.blobDigest))) return undefined;
    return { diffId, blob: { digest: l.blobDigest, file: '', mediaType: l.mediaType, size: l.blobSize }, size: l.size };
  }

  private async importRootfsTar(file: string, staging: Staging, trusted: boolean, onBytes?: (n: number) => void) {
    const dir = staging.newDir();
    const x = await extractLayer(fileStream(file), compressionOf(readHead(file)), dir, staging.path('blob'), { trusted, onBytes });
    return { layers: [{ ...x, dir }], config: defaultConfig(), properties: {} };
  }

  /** A plain directory (an unpacked rootfs): packed into one layer, copied into the store. */
  private async importRootfsDir(src: string, staging: Staging) {
    const dir = staging.newDir();
    const packed = packLayer(src, staging.path('blob'), dir, false);
    // the layer as a server sees it has no /dev nodes; the blob (what export gives) is the directory as given
    dropDeviceNodes(join(dir, 'dev'));
    return {
      layers: [
        {
          diffId: packed.diffId,
          blob: { digest: packed.diffId, file: packed.blobFile, mediaType: MEDIA_TAR, size: packed.size },
          size: packed.size,
          dir,
        },
      ],
      config: defaultConfig(),
      properties: {},
    };
  }

  private async importLxc(file: string, staging: Staging, trusted: boolean) {
    let root: string;
    let metadata = '';
    if (statSync(file).isDirectory()) {
      root = join(file, 'rootfs');
      metadata = readText(join(file, 'metadata.yaml'));
      const r = await this.importRootfsDir(root, staging);
      return { ...r, properties: parseLxcMetadata(metadata) };
    }
    const whole = staging.newDir('lxc');
    await extractLayer(fileStream(file), compressionOf(readHead(file)), whole, staging.path('lxc-blob'), {
      trusted,
      devDir: 'rootfs/dev/',
    });
    root = join(whole, 'rootfs');
    if (!existsSync(root)) throw new BadRequest('not an LXC/Incus image: it has no rootfs/ directory');
    metadata = readText(join(whole, 'metadata.yaml'));
    const packed = packLayer(root, staging.path('blob'), null, false);
    return {
      layers: [
        {
          diffId: packed.diffId,
          blob: { digest: packed.diffId, file: packed.blobFile, mediaType: MEDIA_TAR, size: packed.size },
          size: packed.size,
          dir: root,
        },
      ],
      config: defaultConfig(),
      properties: parseLxcMetadata(metadata),
    };
  }

  private async importLayout(
    file: string,
    format: 'oci' | 'docker-archive',
    staging: Staging,
    opts: ImportOptions,
    onBytes?: (n: number) => void,
  ) {
    let src: ArchiveSource;
    if (statSync(file).isDirectory()) src = new DirSource(file);
    else {
      const c = compressionOf(readHead(file));
      let tarFile = file;
      if (c !== 'none') {
        tarFile = staging.path('archive.tar');
        await pipeline(fileStream(file), decompressor(c)!, createWriteStream(tarFile));
      }
      src = new TarSource(tarFile);
    }
    const json = (p: string) => {
      try {
        return JSON.parse(src.read(p, 16 << 20).toString('utf8'));
      } catch (err) {
        if (err instanceof NovaboxError) throw err;
        throw new BadRequest(`invalid JSON in ${p}: ${(err as Error).message}`);
      }
    };
    let configDoc: unknown;
    let layerFiles: { path: string; mediaType?: string; digest?: string }[];
    if (format === 'oci') {
      if (!src.has('index.json')) throw new BadRequest('not an OCI image layout: no index.json');
      const desc = pickManifest(json('index.json'), opts.ref);
      const blob = (d: string) => `blobs/sha256/${d.slice(7)}`;
      const m = parseManifest(json(blob(desc.digest)));
      configDoc = json(blob(m.config.digest));
      layerFiles = m.layers.map((l) => ({ path: blob(l.digest), mediaType: l.mediaType, digest: l.digest }));
    } else {
      if (!src.has('manifest.json')) throw new BadRequest('not a docker archive: no manifest.json');
      const m = parseDockerManifest(json('manifest.json'), opts.ref);
      configDoc = json(m.config);
      layerFiles = m.layers.map((p) => ({ path: p }));
    }
    const parsed = parseImageConfig(configDoc);
    if (parsed.diffIds.length !== layerFiles.length)
      throw new BadRequest(`the image config lists ${parsed.diffIds.length} layers, the manifest ${layerFiles.length}`);
    if (parsed.architecture && parsed.architecture !== hostArch()) {
      throw new BadRequest(`the image is for ${parsed.architecture}, this host is ${hostArch()}`);
    }
    const layers: Layered[] = [];
    for (let i = 0; i < layerFiles.length; i++) {
      const lf = layerFiles[i];
      opts.signal?.throwIfAborted();
      const have = this.known(parsed.diffIds[i]);
      if (have) {
        layers.push(have);
        continue;
      }
      const head = await headOf(src.open(lf.path));
      const c: Compression = lf.mediaType?.endsWith('+gzip') ? 'gzip' : lf.mediaType?.endsWith('+zstd') ? 'zstd' : compressionOf(head);
      const dir = staging.newDir();
      const x = await extractLayer(src.open(lf.path), c, dir, staging.path(`blob${i}`), {
        trusted: Boolean(opts.trusted),
        expectDiffId: parsed.diffIds[i],
        expectBlobDigest: lf.digest,
        onBytes,
        signal: opts.signal,
      });
      layers.push({ ...x, dir });
    }
    return {
      layers,
      config: parsed.config,
      properties: { architecture: parsed.architecture ?? hostArch(), os_type: parsed.os ?? 'linux' },
    };
  }

  // ---- build -------------------------------------------------------------------------

  /**
   * `image build debian`: debootstrap's rootfs (debootstrap.ts: cached, or built in a
   * staging dir and then cached), imported as a directory with the image properties of a
   * Debian system container. The name must be free (a rebuild would make it ambiguous).
   * On any failure or an abort, no record, staging dir or new cache entry is left.
   */
  async buildDebian(input: DebianBuildInput, caller: ImageCaller, opts: DebianBuildOptions): Promise<DebianBuildResult> {
    const b = checkDebianBuild(input, debootstrapScripts());
    checkImageName(b.name);
    if (this.repo.allByName(b.name).some((i) => LIVE.includes(i.status) && this.visible(i, caller)))
      throw new Conflict(`an image named ${JSON.stringify(b.name)} exists already`, {
        hint: 'delete it first, or give this one another --name',
      });
    const t0 = Date.now();
    const built = await debianRootfs(b, opts.cacheDir, opts.noCache, opts);
    if (opts.signal?.aborted) throw new Interrupted('the build');
    opts.onStatus?.(`importing ${b.name}`);
    const image = await this.importFile(built.rootfs, { name: b.name, properties: rootfsProperties(built.rootfs, b) }, caller, {});
    if (opts.signal?.aborted) {
      this.delete(image.id, caller);
      throw new Interrupted('the build');
    }
    return { image, cached: built.cached, key: built.key, seconds: (Date.now() - t0) / 1000 };
  }

  // ---- update / delete -----------------------------------------------------------------

  update(ref: string, patch: ImagePatch, caller: ImageCaller): ImageRecord {
    const img = this.show(ref, caller);
    this.mayChange(img, caller);
    if (patch.name !== undefined) checkImageName(patch.name);
    for (const [k, v] of Object.entries(patch.properties ?? {})) checkProperty(k, v);
    if (patch.visibility === 'public' && !caller.isAdmin)
      throw new NovaboxError('permission', 'only an administrator may publish public images');
    if (patch.config && isDataImage(img))
      throw new BadRequest(`image "${img.name}" holds data, not a root filesystem: it has no command or environment to set`);
    return this.store.tx(() => {
      const cur = this.repo.get(img.id)!;
      const props = { ...cur.properties, ...(patch.properties ?? {}) };
      for (const k of patch.removeProperties ?? []) {
        if (!(k in props)) throw new NotFound(`image "${cur.name}" has no property "${k}"`);
        delete props[k];
      }
      const { removeProperties: _r, config: configPatch, ...rest } = patch;
      const config = configPatch ? applyConfigPatch(cur.config, configPatch) : undefined;
      const updated = this.repo.update(img.id, { ...rest, properties: props, ...(config ? { config } : {}) });
      if (config && cur.status === 'active')
        republishConfig({ id: cur.id, name: updated.name, layers: updated.layers, config, created: updated.createdAt });
      if (patch.name !== undefined && patch.name !== cur.name && cur.status === 'active' && !isDataImage(cur)) {
        removeImageRef(cur.name, cur.id);
        this.republish(cur.name);
        writeImage({ id: cur.id, name: updated.name, layers: updated.layers, config: updated.config, created: updated.createdAt });
      }
      return updated;
    });
  }

  /** Refused while a server uses it (409); removes only the layers no other image uses. */
  delete(ref: string, caller: ImageCaller): void {
    const img = this.show(ref, caller);
    this.mayChange(img, caller);
    if (img.protected) throw new Conflict(`image ${img.name} is protected: unset protected first`);
    const trash = new Staging('trash');
    try {
      this.store.tx(() => {
        const cur = this.repo.get(img.id);
        if (!cur) throw new NotFound(`image "${ref}" not found`);
        // a saving image may go (Glance): its record now; the snapshot or upload saving it
        // finds it gone when it commits and removes what it staged
        const users = this.repo.serversUsing(cur);
        if (users.length) {
          throw new Conflict(
            `image "${cur.name}" is in use by ${users.length} server${users.length > 1 ? 's' : ''} (${users
              .slice(0, 3)
              .map((s) => s.name)
              .join(', ')})`,
            {
              hint: 'delete or rebuild those servers first',
            },
          );
        }
        this.repo.remove(cur.id);
        if (cur.status === 'active' || cur.status === 'deactivated') {
          removeImageRef(cur.name, cur.id);
          this.republish(cur.name);
        }
        for (const l of this.repo.unreferencedLayers()) {
          this.repo.removeLayer(l.diffId);
          retireLayer(l.diffId, l.blobDigest, trash);
        }
      });
    } finally {
      trash.remove();
    }
  }

  /** After an image of this name went: the name's runtime file points at the newest other active one. */
  private republish(name: string): void {
    const next = this.repo.allByName(name).find((i) => i.status === 'active' && !isDataImage(i));
    republishName(name, next && { id: next.id, name: next.name, layers: next.layers, config: next.config, created: next.createdAt });
  }

  // ---- download ------------------------------------------------------------------------

  /** The image as an OCI image layout archive (what `image save` writes and Glance download returns). */
  download(ref: string, caller: ImageCaller, onBytes?: (n: number) => void): { stream: Readable; size: number; record: ImageRecord } {
    const img = this.show(ref, caller);
    if (img.status !== 'active') throw new Conflict(`image "${img.name}" is ${img.status}: it has no data to download`);
    if (isDataImage(img)) {
      const l = this.repo.layer(img.layers[0]!);
      if (!l || !existsSync(blobPath(l.blobDigest)))
        throw new NovaboxError('internal', `image ${img.id}: its data is missing from the store`);
      const stream = fileStream(blobPath(l.blobDigest));
      if (onBytes) stream.on('data', (c: Buffer) => onBytes(c.length));
      return { stream, size: l.blobSize, record: img };
    }
    const layers = img.layers.map((d) => {
      const l = this.repo.layer(d);
      if (!l || !existsSync(blobPath(l.blobDigest)))
        throw new NovaboxError('internal', `image "${img.name}": the blob of layer ${d} is missing`);
      return l;
    });
    const docs = ociDocuments(img, layers);
    const members: ArchiveMember[] = [
      { name: 'blobs/', dir: true },
      { name: 'blobs/sha256/', dir: true },
      ...layers.map((l) => ({ name: `blobs/sha256/${l.blobDigest.slice(7)}`, file: blobPath(l.blobDigest), size: l.blobSize })),
      { name: `blobs/sha256/${docs.configDigest.slice(7)}`, data: docs.config },
      { name: `blobs/sha256/${docs.manifestDigest.slice(7)}`, data: docs.manifest },
      { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      { name: 'index.json', data: docs.index },
    ];
    const size = members.reduce(
      (a, m) => a + 512 + ('data' in m ? Math.ceil(m.data.length / 512) * 512 : 'size' in m ? Math.ceil(m.size / 512) * 512 : 0),
      1024,
    );
    return { stream: tarStream(members, onBytes), size, record: img };
  }

  // ---- the built-in image ----------------------------------------------------------------

  /** busybox, built from the host's busybox-static on first use. */
  ensureBuiltin(): ImageRecord {
    const have = this.repo.byName('busybox');
    if (have?.status === 'active') return have;
    const staging = new Staging('busybox');
    let id: string | undefined;
    try {
      const rootfs = buildBusyboxLayer(staging.dir);
      const packed = packLayer(rootfs, staging.path('blob'), null, false);
      id = randomUuid();
      try {
        this.repo.insert({
          id,
          name: 'busybox',
          owner: this.localCaller().projectId,
          status: 'saving',
          visibility: 'public',
          diskFormat: 'raw',
          containerFormat: 'bare',
          taskOwnerPid: process.pid,
          taskOwnerStart: readProcStart(process.pid) ?? 0,
          properties: { description: 'static busybox from the host (built in)' },
        } satisfies NewImage);
      } catch (err) {
        if (err instanceof Conflict) {
          id = undefined;
          const other = this.repo.byName('busybox');
          if (other?.status === 'active') return other; // another process built it first
        }
        throw err;
      }
      return this.activate(
        id,
        [
          {
            diffId: packed.diffId,
            blob: { digest: packed.diffId, file: packed.blobFile, mediaType: MEDIA_TAR, size: packed.size },
            size: packed.size,
            dir: rootfs,
          },
        ],
        BUSYBOX_CONFIG,
        {},
        'builtin',
      );
    } catch (err) {
      if (id) this.store.tx(() => this.repo.remove(id!));
      throw err;
    } finally {
      staging.remove();
    }
  }

  // ---- snapshots (server image create) ---------------------------------------------------

  /** The new image's record, queued; snapshot.ts fills it. */
  snapshotRecord(
    name: string,
    base: ImageRecord | undefined,
    server: { id: string; name: string },
    caller: ImageCaller,
    properties: Record<string, string>,
  ): ImageRecord {
    checkImageName(name);
    return this.repo.insert({
      id: randomUuid(),
      name,
      owner: caller.projectId,
      status: 'queued',
      visibility: 'private',
      diskFormat: 'raw',
      containerFormat: 'bare',
      taskOwnerPid: process.pid,
      taskOwnerStart: selfStart(),
      properties: {
        image_type: 'snapshot',
        instance_uuid: server.id,
        ...(base ? { base_image_ref: base.id, base_image_name: base.name } : {}),
        ...properties,
      },
      config: base?.config ?? defaultConfig(),
    });
  }

  /** snapshot.ts: mark saving (owned by this process), then commit the packed layer. */
  markSaving(id: string): void {
    this.claim(id, 'queued');
  }

  commitSnapshot(
    id: string,
    base: ImageRecord | undefined,
    layer: { diffId: string; blobFile: string; size: number; dir?: string },
  ): ImageRecord {
    const inherited = (base?.layers ?? []).map((d) => this.known(d) ?? missingLayer(d));
    const top: Layered = {
      diffId: layer.diffId,
      blob: { digest: layer.diffId, file: layer.blobFile, mediaType: MEDIA_TAR, size: layer.size },
      size: layer.size,
      dir: layer.dir,
    };
    const cur = this.repo.get(id)!;
    return this.activate(id, [...inherited, top], cur.config, {}, 'snapshot');
  }

  /**
   * Nova's backup rotation: of a server's active backups of one type, keep the `rotation`
   * newest and delete the rest (rotation 0 deletes them all). A backup a server still
   * boots from stays (it cannot be deleted) and is skipped; the names of the deleted ones
   * are returned.
   */
  rotateBackups(serverId: string, backupType: string, rotation: number, caller: ImageCaller): string[] {
    const backups = this.repo
      .list()
      .filter(
        (i) =>
          i.status === 'active' &&
          i.properties.image_type === 'backup' &&
          i.properties.instance_uuid === serverId &&
          i.properties.backup_type === backupType,
      );
    const deleted: string[] = [];
    for (const old of backups.slice(Math.max(0, rotation))) {
      try {
        this.delete(old.id, { ...caller, isAdmin: true });
        deleted.push(old.id);
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
      }
    }
    return deleted;
  }

  failSnapshot(id: string): void {
    this.killIfSaving(id);
  }

  removeRecord(id: string): void {
    this.store.tx(() => this.repo.remove(id));
  }

  // ---- the server stream (compute/migration) ---------------------------------------------

  /** Whether a layer is here (its blob; the directory is made on first boot if missing). */
  hasLayer(diffId: string): boolean {
    return this.known(diffId) !== undefined;
  }

  /**
   * An image of another host, under its own id: `staged` holds the layers the stream
   * brought (extracted into a Staging), the others must be here. Active on return; inside
   * the caller's transaction when there is one.
   */
  adoptImage(
    img: Pick<
      ImageRecord,
      | 'id'
      | 'name'
      | 'visibility'
      | 'diskFormat'
      | 'containerFormat'
      | 'minDisk'
      | 'minRam'
      | 'tags'
      | 'properties'
      | 'config'
      | 'createdAt'
    >,
    diffIds: string[],
    staged: ReadonlyMap<string, Layered>,
    caller: ImageCaller,
  ): ImageRecord {
    checkImageName(img.name);
    return this.store.tx(() => {
      this.repo.insert({ ...img, owner: caller.projectId, status: 'saving', taskOwnerPid: process.pid, taskOwnerStart: selfStart() });
      const layers = diffIds.map((d) => staged.get(d) ?? this.known(d) ?? missingLayer(d));
      return this.activate(img.id, layers, img.config, {}, img.properties.novabox_source ?? 'stream');
    });
  }
}

export type { Layered };

/** The media type of an image's data kept as given (activateData). */
export const MEDIA_DATA = 'application/octet-stream';

/** An image whose data is no root filesystem (uploaded as is): active in Glance, never booted. */
export function isDataImage(img: Pick<ImageRecord, 'properties'>): boolean {
  return img.properties.novabox_source === DATA_SOURCE;
}

function hashFile(file: string, algo: 'sha256'): string {
  const h = createHash(algo);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n: number; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function missingLayer(d: string): never {
  throw new NovaboxError('internal', `layer ${d} of the base image is missing from the store`);
}

function checkProperty(k: string, v: string): void {
  if (!k || k.length > 255 || String(v).length > 65535) throw new BadRequest(`invalid property "${k}": keys are 1 to 255 characters`);
}

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

export function defaultConfig(): ImageConfig {
  return { cmd: [], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], workingDir: '/', user: '' };
}

async function headOf(s: Readable): Promise<Buffer> {
  for await (const chunk of s) {
    s.destroy();
    return chunk as Buffer;
  }
  return Buffer.alloc(0);
}

/** What an import file is: a directory's layout, or a tar's first entries (decompressed). */
export async function detectFormat(file: string, label = file): Promise<Exclude<ImportFormat, 'auto'> | 'rootfs-dir'> {
  if (statSync(file).isDirectory()) return formatFromDir(readdirSync(file));
  const c = compressionOf(readHead(file));
  const raw = fileStream(file);
  const dec = decompressor(c);
  const stream = dec ? raw.pipe(dec) : raw;
  if (dec) raw.on('error', () => dec.destroy());
  const names = await firstEntries(stream, 64);
  raw.destroy();
  dec?.destroy();
  if (names.length === 0) throw new BadRequest(`${label} is not a tar archive, an OCI layout or a directory`);
  return formatFromEntries(names);
}

/** The OCI config, manifest and index of an image: deterministic, so digests are stable. */
export function ociDocuments(
  img: Pick<ImageRecord, 'name' | 'config' | 'layers' | 'createdAt'>,
  layers: { diffId: string; blobDigest: string; mediaType: string; blobSize: number }[],
) {
  const c = img.config;
  const config = Buffer.from(
    JSON.stringify({
      created: `${img.createdAt.slice(0, 19)}Z`,
      architecture: hostArch(),
      os: 'linux',
      config: {
        ...(c.env.length ? { Env: c.env } : {}),
        ...(c.entrypoint?.length ? { Entrypoint: c.entrypoint } : {}),
        ...(c.cmd.length > (c.entrypoint?.length ?? 0) ? { Cmd: c.cmd.slice(c.entrypoint?.length ?? 0) } : {}),
        WorkingDir: c.workingDir || '/',
        ...(c.user ? { User: c.user } : {}),
        ...(c.stopSignal ? { StopSignal: c.stopSignal } : {}),
        ...(c.serverCmd ? { Labels: { [SERVER_CMD_LABEL]: JSON.stringify(c.serverCmd) } } : {}),
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  // the native SHA-256 when the library is loaded already (a snapshot has just packed with
  // it): node:crypto's first hash pays ~0.8 ms of OpenSSL start-up; the digests are the same
  const sha = (b: Buffer) => `sha256:${native.isLoaded() ? sha256Hex(b) : createHash('sha256').update(b).digest('hex')}`;
  const configDigest = sha(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_MANIFEST,
      config: { mediaType: MEDIA_CONFIG, digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.blobDigest, size: l.blobSize })),
    }),
  );
  const manifestDigest = sha(manifest);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_INDEX,
      manifests: [
        {
          mediaType: MEDIA_MANIFEST,
          digest: manifestDigest,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': img.name },
        },
      ],
    }),
  );
  return { config, configDigest, manifest, manifestDigest, index };
}

export { MEDIA_TAR_GZIP, MEDIA_TAR_ZSTD };
export { checkConfigFlags, isEmptyPatch, type ConfigFlags, type ConfigPatch } from './config-edit.js';
