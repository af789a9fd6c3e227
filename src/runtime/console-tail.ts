/**
 * Following a server's console log across its rotation. The monitor keeps at most two
 * files (native-bindings/src/monitor.c log_write): when `console.log` would pass its
 * bound it is closed, renamed to `console.log.1` and opened anew; novabox's own lines
 * (server.ts logLine) are appended to whatever `console.log` is at that moment.
 *
 * The tail holds an fd, not a path: after a rename that fd is the rotated file, read to
 * its end before the new `console.log` (another inode) is opened and read from 0. Wake-ups
 * come from inotify on the server's directory (fs.watch: the monitor's writes, the rename,
 * the exit-status file), so a line shows as soon as it is written; a slow timer only
 * re-checks the server's state in case a wake-up was missed (inotify drops events when
 * its queue overflows). No busy polling: an idle follower sleeps in epoll.
 */
import { closeSync, fstatSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

const CHUNK = 64 * 1024;

export class ConsoleTail {
  private fd = -1;
  private ino = -1;
  private pos = 0;

  constructor(readonly path: string) {}

  /** Open the live log if it exists; returns what the rotated file and the live one hold now (the backlog). */
  backlog(): string {
    let text = '';
    try {
      const old = openSync(`${this.path}.1`, 'r');
      try {
        text += this.readAll(old, 0).text;
      } finally {
        closeSync(old);
      }
    } catch {
      /* no rotated file */
    }
    if (this.openLive()) text += this.read();
    return text;
  }

  /** What was written since the last call, across a rotation. */
  read(): string {
    if (this.fd < 0 && !this.openLive()) return '';
    let text = this.readMore();
    // a rotation or a new file under the name: the old one is complete, go on with the new
    let ino: number;
    try {
      ino = statSync(this.path).ino;
    } catch {
      return text; // between the rename and the new file: the next wake-up finds it
    }
    if (ino !== this.ino) {
      text += this.readMore();
      closeSync(this.fd);
      this.fd = -1;
      if (this.openLive()) text += this.readMore();
    }
    return text;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private openLive(): boolean {
    try {
      this.fd = openSync(this.path, 'r');
    } catch {
      return false;
    }
    this.ino = fstatSync(this.fd).ino;
    this.pos = 0;
    return true;
  }

  private readMore(): string {
    const { text, pos } = this.readAll(this.fd, this.pos);
    this.pos = pos;
    return text;
  }

  private readAll(fd: number, from: number): { text: string; pos: number } {
    const parts: Buffer[] = [];
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = from;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      if (n <= 0) break;
      parts.push(Buffer.from(buf.subarray(0, n)));
      pos += n;
    }
    return { text: Buffer.concat(parts).toString('utf8'), pos };
  }
}

/**
 * Calls `onChange` when anything in the log's directory changes (inotify), and every
 * `checkMs` regardless. Returns the function that stops watching.
 */
export function watchConsole(path: string, onChange: () => void, checkMs: number): () => void {
  let watcher: FSWatcher | undefined;
  const name = basename(path);
  try {
    watcher = watch(dirname(path), { persistent: true }, (_event, file) => {
      // the log, its rotated file, and exit-status (the init is gone) all concern us
      if (file === null || file.startsWith(name) || file === 'exit-status') onChange();
    });
  } catch {
    /* no inotify (limits reached): the timer alone wakes us */
  }
  const timer = setInterval(onChange, watcher ? checkMs : Math.min(checkMs, 200));
  return () => {
    clearInterval(timer);
    watcher?.close();
  };
}

/** The last `lines` lines of `text` (all of it when undefined). */
export function lastLines(text: string, lines?: number): string {
  if (lines === undefined) return text;
  if (lines === 0 || text === '') return '';
  const all = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  return all.slice(-lines).join('\n') + (text.endsWith('\n') ? '\n' : '');
}
