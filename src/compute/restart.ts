/**
 * Restart policies (podman's and Docker's `--restart`), pure: what a policy says after a
 * server's command exited. The server's monitor applies it (it starts `novabox server
 * _exited <id>` once the init is reaped: ServerService.afterExit), and so does
 * `novabox autostart run` at boot.
 */
import { BadRequest } from '../errors.js';

export type RestartPolicy = { mode: 'no' } | { mode: 'always' } | { mode: 'on-failure'; max?: number };

/** `no`, `always`, `on-failure` or `on-failure:N` (N >= 1 restarts in a row at most). */
export function parseRestart(text: string): RestartPolicy {
  if (text === 'no' || text === 'always') return { mode: text };
  const m = /^on-failure(?::(\d{1,6}))?$/.exec(text);
  if (m && (m[1] === undefined || Number(m[1]) >= 1))
    return m[1] === undefined ? { mode: 'on-failure' } : { mode: 'on-failure', max: Number(m[1]) };
  throw new BadRequest(`invalid restart policy ${JSON.stringify(text)}: expected no, always, on-failure or on-failure:N (N >= 1)`);
}

/** A server that ran this long before it exited starts the count (and the backoff) again. */
export const RESTART_RESET_MS = 10_000;
/** The first restart's delay, doubled for each restart in a row, up to RESTART_MAX_DELAY_MS. */
export const RESTART_BASE_MS = 100;
export const RESTART_MAX_DELAY_MS = 30_000;

export interface RestartDecision {
  restart: boolean;
  /** wait this long first */
  delayMs: number;
  /** the count to record with the restart (restarts in a row, this one included) */
  count: number;
  /** why not, for the console log */
  reason?: string;
}

/**
 * After an exit: `failed` (a non-zero status or a signal), `count` restarts in a row so
 * far, `ranMs` how long it ran. on-failure:N stops after N restarts in a row.
 */
export function decideRestart(p: RestartPolicy, failed: boolean, count: number, ranMs: number): RestartDecision {
  const n = ranMs >= RESTART_RESET_MS ? 0 : count;
  if (p.mode === 'no') return { restart: false, delayMs: 0, count: n, reason: 'restart policy no' };
  if (p.mode === 'on-failure' && !failed) return { restart: false, delayMs: 0, count: n, reason: 'it exited with status 0' };
  if (p.mode === 'on-failure' && p.max !== undefined && n >= p.max) {
    return { restart: false, delayMs: 0, count: n, reason: `restarted ${n} times in a row (on-failure:${p.max})` };
  }
  return { restart: true, delayMs: Math.min(RESTART_BASE_MS * 2 ** Math.min(n, 20), RESTART_MAX_DELAY_MS), count: n + 1 };
}

/** The systemd unit's file name: one per state root (the default root's has no suffix). */
export function autostartUnitName(root: string, hash: string): string {
  return root === '/var/lib/novabox' ? 'novabox-autostart.service' : `novabox-autostart-${hash.slice(0, 8)}.service`;
}

const quote = (a: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/(["\\$`])/g, '\\$1')}"`);

/** The boot unit: `novabox autostart run` once, after the network, for one state root. */
export function autostartUnit(root: string, command: string[], parallel: number): string {
  return [
    '[Unit]',
    `Description=novabox: start the servers whose restart policy asks for it (${root})`,
    'After=network-online.target local-fs.target nftables.service',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `Environment=${quote(`NOVABOX_ROOT=${root}`)}`,
    `ExecStart=${[...command, 'autostart', 'run', '--parallel', String(parallel)].map(quote).join(' ')}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
