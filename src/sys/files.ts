/** Files inside a container's tree (native-bindings/src/layer.c): in-root opens for `server cp`, overlay opaque dirs. */
import { SysError } from '../errors.js';
import { errnoName, errnoText } from './errno.js';
import { layerIsOpaqueFast, library } from './native.js';

interface FileBindings {
  nb_open_in_root: (rootFd: number, path: string, oflags: number) => number;
  nb_layer_is_opaque: (dir: string) => number;
}

let filesBound: FileBindings | undefined;

function bindFiles(): FileBindings {
  if (filesBound) return filesBound;
  const { lib } = library();
  filesBound = {
    nb_open_in_root: lib.func('int nb_open_in_root(int root_fd, const char *path, int oflags)'),
    nb_layer_is_opaque: lib.func('int nb_layer_is_opaque(const char *dir)'),
  };
  return filesBound;
}

/**
 * Open `path` below the directory `rootFd` with openat2 RESOLVE_IN_ROOT (symlinks, ".."
 * and absolute paths resolved as if rootFd were "/", no magic links): an fd, or a
 * SysError whose `errno` names why (ENOENT, ENOTDIR, ELOOP…).
 */
export function openInRoot(rootFd: number, path: string, oflags: number): number {
  const fd = bindFiles().nb_open_in_root(rootFd, path, oflags);
  if (fd < 0) throw new SysError('openat2 (RESOLVE_IN_ROOT)', errnoName(fd), path, errnoText(fd));
  return fd;
}

/** Whether an overlay layer's directory hides the layers below it (trusted.overlay.opaque). */
export function isOpaqueDir(dir: string): boolean {
  const rc = layerIsOpaqueFast(dir) ?? bindFiles().nb_layer_is_opaque(dir);
  if (rc < 0) throw new SysError('getxattr trusted.overlay.opaque', errnoName(rc), dir, errnoText(rc));
  return rc === 1;
}
