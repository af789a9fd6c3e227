/** Layers in C (native-bindings/src/layer.c): pack a directory into a tar while hashing it, whiteouts, opaque dirs. */
import { NovaboxError, SysError } from '../errors.js';
import { errnoName, errnoText } from './errno.js';
import { library } from './native.js';

/** A packed layer tar: its size and the sha256 of its bytes (hex), computed while writing. */
export interface PackResult {
  size: number;
  sha256: string;
}

/** A container's id range: its host ids go back to ids 0..count-1 in a packed layer. */
export interface IdShift {
  uidBase: number;
  gidBase: number;
  count: number;
}

/**
 * Pack a directory in overlay form into an OCI layer tar on tarFd (from offset 0),
 * hashing it in the same pass (native-bindings/src/layer.c); optionally mirror it.
 * `shift`: the writable layer of a container in its own user namespace (host ids).
 */
export function layerPack(src: string, tarFd: number, mirror: string | null, syncfs: boolean, shift?: IdShift): PackResult {
  const err = Buffer.alloc(1024);
  const digest = Buffer.alloc(32);
  const s = shift ?? { uidBase: 0, gidBase: 0, count: 0 };
  const n = Number(
    library().bindings.nb_layer_pack_shifted(src, tarFd, mirror, syncfs ? 1 : 0, s.uidBase, s.gidBase, s.count, digest, err, err.length),
  );
  if (n < 0) throw new NovaboxError('sys', `cannot pack the layer: ${err.toString('utf8', 0, err.indexOf(0))}`);
  return { size: n, sha256: digest.toString('hex') };
}

/** layerPack on a thread of the libuv pool: the event loop stays free (serve answers meanwhile). */
export function layerPackAsync(src: string, tarFd: number, mirror: string | null, syncfs: boolean, shift?: IdShift): Promise<PackResult> {
  const err = Buffer.alloc(1024);
  const digest = Buffer.alloc(32);
  const s = shift ?? { uidBase: 0, gidBase: 0, count: 0 };
  return new Promise((resolve, reject) => {
    library().bindings.nb_layer_pack_shifted.async(
      src,
      tarFd,
      mirror,
      syncfs ? 1 : 0,
      s.uidBase,
      s.gidBase,
      s.count,
      digest,
      err,
      err.length,
      (e, r) => {
        if (e) return reject(e);
        const n = Number(r);
        if (n < 0) reject(new NovaboxError('sys', `cannot pack the layer: ${err.toString('utf8', 0, err.indexOf(0))}`));
        else resolve({ size: n, sha256: digest.toString('hex') });
      },
    );
  });
}

/** The sha256 of a buffer (hex), with the packer's SHA-256 (SHA-NI where the CPU has it). */
export function sha256Hex(data: Buffer): string {
  const out = Buffer.alloc(32);
  library().bindings.nb_sha256(data, data.length, out);
  return out.toString('hex');
}

/** An OCI whiteout turned back into overlay form: a 0/0 character device at path. */
export function layerWhiteout(path: string): void {
  const rc = library().bindings.nb_layer_whiteout(path);
  if (rc < 0) throw new SysError('mknod (whiteout)', errnoName(rc), path, errnoText(rc));
}

/** Mark a layer directory opaque for overlayfs. */
export function layerSetOpaque(dir: string): void {
  const rc = library().bindings.nb_layer_set_opaque(dir);
  if (rc < 0) throw new SysError('setxattr trusted.overlay.opaque', errnoName(rc), dir, errnoText(rc));
}
