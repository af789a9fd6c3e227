// bin/novabox is generated at build time from the tracked bin/launcher.cjs: the same
// launcher with `#!<the node that ran the build>` as its first line, so the kernel execs
// node directly instead of /usr/bin/env first (~0.6 ms per start here; pip writes its
// entry points the same way). Rebuild (`npm run build`) after moving or upgrading node.
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const ENV_SHEBANG = '#!/usr/bin/env node';

/**
 * The shebang line for bin/novabox. `#!/usr/bin/env node` where an absolute path cannot
 * serve: a package made for other machines (npm pack/publish run prepare too), a path
 * with whitespace (the kernel ends the interpreter at the first blank) or one too long
 * for older kernels' 127-byte shebang buffer.
 */
export function shebangFor(execPath, env = process.env) {
  if (env.npm_command === 'pack' || env.npm_command === 'publish') return ENV_SHEBANG;
  if (!execPath.startsWith('/') || /\s/.test(execPath) || execPath.length > 120) return ENV_SHEBANG;
  return `#!${execPath}`;
}

/** Write `out` (atomically, mode 755) from the template with `shebang` as its first line. */
export function writeLauncher(template, out, shebang) {
  const text = readFileSync(template, 'utf8');
  if (!text.startsWith('#!')) throw new Error(`${template} must start with a #! line`);
  const tmp = `${out}.${process.pid}`;
  writeFileSync(tmp, shebang + text.slice(text.indexOf('\n')), { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, out);
}
