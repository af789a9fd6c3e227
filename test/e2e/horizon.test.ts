/**
 * Issue 16, item 14: OpenStack's dashboard for real. Horizon from Debian's openstack-dashboard
 * (its settings, its offline-compressed static files; Django's threaded server on a loopback
 * port: horizon/dashboard.py) in front of `novabox serve` on 127.0.0.1, driven by Debian's
 * headless Chromium through chromium-driver and python3-selenium (horizon/browser.py, one
 * command a line). Logs in through novabox's Keystone v3, sees the overview and the images,
 * launches busybox from the (Angular) Launch Instance workflow, sees it ACTIVE in the
 * Instances table, shuts it off, starts it, soft-reboots it, snapshots it (the row's Create
 * Snapshot form; the snapshot goes Active on the Images page, with image_type=snapshot and
 * instance_uuid in Glance), deletes it, and deletes the snapshot from the Images page's
 * Delete Image action: a screenshot per step into a temp directory (its path is printed),
 * page content asserted at each step and the server's and image's state checked through the
 * API too. Horizon's own log must show no server error
 * except the Neutron ones it makes without a network service (novabox has none: see below),
 * and no 404 from an API it called.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { horizonMissing } from '../../scripts/horizon-needs.mjs';
import { census, type Census } from '../helpers/census.js';
import { tempRoot } from '../helpers/run-cli.js';
import { skipEachIf } from '../helpers/skip.js';
import { startServe, tokenFor, type Serve } from './serve.js';

const HERE = join(import.meta.dirname, 'horizon');
const PY = '/usr/bin/python3';

const reason = horizonMissing();

/** A child that prints "listening on URL" when ready; its output is kept for the asserts. */
function startChild(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  ms: number,
): Promise<{ proc: ChildProcess; out: () => string; url: string }> {
  return new Promise((done, fail) => {
    const proc = spawn(PY, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      fail(new Error(`${args[0]} did not start in ${ms} ms:\n${out.slice(-3000)}`));
    }, ms);
    const onData = (d: Buffer) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        done({ proc, out: () => out, url: m[1]! });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`${args[0]} exited with ${code}:\n${out.slice(-3000)}`));
    });
  });
}

function stopChild(proc: ChildProcess | undefined, ms = 10_000): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), ms);
    proc.on('exit', () => {
      clearTimeout(t);
      done();
    });
    proc.kill('SIGTERM');
  });
}

interface Answer {
  ok: boolean;
  error?: string;
  text?: string;
  url?: string;
  path?: string;
  errors?: string[];
  pids?: number[];
}

/** Processes whose command line names `path` (Chromium's: its profile directory). */
function processesNaming(path: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path)) out.push(Number(pid));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The browser bridge: one JSON command a line, one answer a line. */
class Browser {
  private answers: ((a: Answer) => void)[] = [];
  private stderr = '';
  /** chromedriver's pid (the first answer's) */
  driverPid = 0;
  private constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const a = JSON.parse(l) as Answer;
      this.answers.shift()?.(a);
    });
    proc.stderr!.on('data', (d) => (this.stderr += d));
  }

  static start(env: NodeJS.ProcessEnv, profile: string): Promise<Browser> {
    const proc = spawn(PY, [join(HERE, 'browser.py'), profile], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const b = new Browser(proc);
    return new Promise((done, fail) => {
      const t = setTimeout(() => fail(new Error(`chromium did not start in 30 s: ${b.stderr}`)), 30_000);
      b.answers.push((a) => {
        clearTimeout(t);
        b.driverPid = a.pids?.[0] ?? 0;
        if (a.ok) done(b);
        else fail(new Error(a.error));
      });
      proc.on('exit', (code) => fail(new Error(`browser.py exited with ${code}: ${b.stderr}`)));
    });
  }

  send(cmd: Record<string, unknown>): Promise<Answer> {
    return new Promise((done, fail) => {
      const t = setTimeout(
        () => fail(new Error(`browser: no answer to ${JSON.stringify(cmd)} in 90 s: ${this.stderr.slice(-2000)}`)),
        90_000,
      );
      this.answers.push((a) => {
        clearTimeout(t);
        done(a);
      });
      this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  /** "quit": browser.py quits Chromium and chromedriver, then exits (SIGTERM after 15 s does the same). */
  async quit(): Promise<void> {
    const p = this.proc;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.on('exit', () => r()));
    p.stdin!.end(`${JSON.stringify({ op: 'quit' })}\n`);
    const t = setTimeout(() => p.kill('SIGTERM'), 15_000);
    const k = setTimeout(() => p.kill('SIGKILL'), 25_000);
    await exited;
    clearTimeout(t);
    clearTimeout(k);
  }
}

/** An XPath string literal (the texts here have no quotes). */
const lit = (s: string) => `'${s}'`;

describe("issue 16: Horizon (Debian's openstack-dashboard) in headless Chromium against novabox serve", () => {
  skipEachIf(reason);
  let root: string;
  let removeRoot: () => void;
  let serve: Serve;
  let horizon: { proc: ChildProcess; out: () => string; url: string };
  let browser: Browser;
  let before: Census;
  let shots: string;
  let profile: string;
  let serverId = '';
  const password = randomBytes(12).toString('hex');
  const name = `hz-${randomBytes(3).toString('hex')}`;
  const snap = `${name}-snap`;
  let snapId = '';
  /** set once the dashboard's deletes are confirmed: afterAll deletes what is left */
  let serverGone = false;
  let snapGone = false;
  const step = { n: 0 };

  const adminToken = () => tokenFor(serve.url, 'admin', password, 'admin');
  const api = async (path: string) => {
    const r = await fetch(`${serve.url}${path}`, { headers: { 'x-auth-token': await adminToken(), accept: 'application/json' } });
    return { status: r.status, json: r.status === 200 ? await r.json() : undefined };
  };
  /** One browser command; a failure keeps a screenshot of what the page showed. */
  const b = async (cmd: Record<string, unknown>) => {
    const a = await browser.send(cmd);
    if (!a.ok) {
      const path = join(shots, `failed-after-${step.n}-${String(cmd.op)}-${Date.now()}.png`);
      await browser.send({ op: 'shot', path });
      const page = await browser.send({ op: 'text' });
      throw new Error(`${cmd.op} failed: ${a.error}\nscreenshot: ${path}\npage (${page.url}):\n${page.text?.slice(0, 3000)}`);
    }
    return a;
  };
  /** A screenshot per step, numbered; returns the page's text. */
  const shot = async (label: string) => {
    step.n += 1;
    await b({ op: 'shot', path: join(shots, `${String(step.n).padStart(2, '0')}-${label}.png`) });
    return (await b({ op: 'text' })).text!;
  };
  /**
   * The messages Horizon shows ("Error: …"): without a network service in the catalog its
   * Launch Instance workflow still asks Neutron for security groups; that is the one allowed.
   */
  const errorsShown = (text: string) =>
    text
      .split('\n')
      .filter((l) => /^\s*Error:/.test(l))
      .filter((l) => !/Unable to retrieve the security groups/.test(l));
  const row = () => `//tr[@data-object-id=${lit(serverId)}]`;
  /** The row's status cell shows `status` (Horizon polls rows in a transitional state). */
  const rowStatus = (status: string, ms = 60_000) =>
    b({ op: 'wait_xpath', xpath: `${row()}/td[normalize-space()=${lit(status)}]`, timeout: ms / 1000 });
  const server = async () => (await api(`/compute/v2.1/servers/${serverId}`)).json?.server;
  const waitApi = async (want: (s: { status: string; 'OS-EXT-STS:task_state': string | null }) => boolean, ms = 60_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const s = await server();
      if (s && want(s)) return s;
      if (Date.now() > end) throw new Error(`server ${serverId} stayed ${s?.status}/${s?.['OS-EXT-STS:task_state']}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  /** A row action from the row's dropdown, confirmed in Horizon's modal when it asks. */
  const rowAction = async (action: string, confirm: string | undefined) => {
    const item = `//*[@id=${lit(`instances__row_${serverId}__action_${action}`)}]`;
    await b({ op: 'click', xpath: `${row()}//*[contains(@class,'dropdown-toggle')]` });
    await b({ op: 'click', xpath: item });
    if (confirm) await b({ op: 'click', xpath: `//div[contains(@class,'modal-footer')]//*[normalize-space()=${lit(confirm)}]` });
  };

  beforeAll(async () => {
    if (reason) return;
    const t0 = Date.now();
    ({ root, remove: removeRoot } = tempRoot('nbx-horizon-'));
    shots = mkdtempSync(join(tmpdir(), 'nbx-horizon-shots-'));
    process.stdout.write(`horizon e2e: screenshots in ${shots}\n`);
    serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password });
    before = census(root);
    // Chromium's profile and chromedriver's scratch dirs (TMPDIR) go under the test's root
    profile = join(root, 'chromium-profile');
    mkdirSync(join(root, 'tmp-browser'), { recursive: true });
    const env = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: root,
      TMPDIR: join(root, 'tmp-browser'),
      LANG: 'C.UTF-8',
      PYTHONDONTWRITEBYTECODE: '1',
    };
    [horizon, browser] = await Promise.all([
      startChild(
        [join(HERE, 'dashboard.py'), '0', `${serve.url}/identity/v3`],
        env,
        /horizon: listening on (http:\/\/127\.0\.0\.1:\d+)/,
        60_000,
      ),
      Browser.start(env, profile),
    ]);
    process.stdout.write(`horizon e2e: serve, Horizon and Chromium up in ${Date.now() - t0} ms\n`);
  }, 90_000);

  afterAll(async () => {
    await browser?.quit();
    await stopChild(horizon?.proc);
    if ((serverId && !serverGone) || (snapId && !snapGone)) {
      // a step failed before the dashboard deleted them: delete the server and the snapshot
      // through the API (a serve on the same root if the last step stopped it), so that no
      // container outlives the test's root
      if (serve.proc.exitCode !== null || serve.proc.signalCode !== null)
        serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password });
      const del = async (path: string) => {
        await fetch(`${serve.url}${path}`, { method: 'DELETE', headers: { 'x-auth-token': await adminToken() } });
        const end = Date.now() + 60_000;
        while ((await api(path)).status !== 404 && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
      };
      if (serverId && !serverGone) await del(`/compute/v2.1/servers/${serverId}`);
      if (snapId && !snapGone) await del(`/image/v2/images/${snapId}`);
    }
    await serve?.stop();
    removeRoot?.();
  }, 180_000);

  it("logs in through novabox's Keystone v3 and shows the project's overview", async () => {
    await b({ op: 'open', url: `${horizon.url}/auth/login/` });
    await b({ op: 'wait_text', text: 'Log in' });
    expect(await shot('login')).toMatch(/User Name[\s\S]*Password[\s\S]*Sign In/);
    await b({ op: 'fill', xpath: "//input[@id='id_username']", value: 'admin' });
    await b({ op: 'fill', xpath: "//input[@id='id_password']", value: password });
    await b({ op: 'click', xpath: "//button[@id='loginBtn']" });
    await b({ op: 'wait_text', text: 'Limit Summary' });
    const text = await shot('overview');
    expect((await b({ op: 'url' })).url).toBe(`${horizon.url}/project/`);
    expect(text).toContain('Overview');
    expect(text).toMatch(/Instances\s+Used 0 of/);
    expect(text).toContain('Usage Summary');
    expect(text).toMatch(/^admin$/m); // the project picker and the user menu
    expect(errorsShown(text)).toEqual([]);
  }, 60_000);

  it('lists busybox on the Images page', async () => {
    await b({ op: 'open', url: `${horizon.url}/project/images/` });
    await b({ op: 'wait_xpath', xpath: "//tr[.//a[normalize-space()='busybox']]" });
    const text = await shot('images');
    expect(text).toMatch(/busybox\s+Image\s+Active\s+Public\s+No\s+RAW/);
    expect(text).toContain('Displaying 1 item');
    expect(errorsShown(text)).toEqual([]);
  }, 60_000);

  it('launches busybox on m1.tiny from the Launch Instance workflow and shows it ACTIVE', async () => {
    await b({ op: 'open', url: `${horizon.url}/project/instances/` });
    await b({ op: 'wait_text', text: 'No items to display.' });
    await b({ op: 'click', xpath: "//*[@id='instances__action_launch-ng']" });
    await b({ op: 'fill', xpath: "//input[@name='name']", value: name });
    await b({ op: 'click', xpath: "//span[normalize-space()='Source']" });
    await b({ op: 'click', xpath: "//tr[td[normalize-space()='busybox']]//button[contains(@class,'fa-arrow-up')]" });
    await b({ op: 'click', xpath: "//span[normalize-space()='Flavor']" });
    await b({ op: 'click', xpath: "//tr[td[normalize-space()='m1.tiny']]//button[contains(@class,'fa-arrow-up')]" });
    // the flavor now sits in the Allocated table above the available ones
    const wizard = await shot('launch-workflow');
    expect(wizard).toMatch(/Launch Instance[\s\S]*Allocated[\s\S]*m1\.tiny/);
    await b({ op: 'click', xpath: "//button[contains(@class,'finish')]" });
    await b({ op: 'wait_xpath', xpath: `//tr[.//a[normalize-space()=${lit(name)}]]`, timeout: 30 });
    const list = (await api(`/compute/v2.1/servers?name=${name}`)).json.servers;
    expect(list).toHaveLength(1);
    serverId = list[0].id;
    await rowStatus('Active');
    const text = await shot('instance-active');
    expect(text).toMatch(
      new RegExp(`${name}\\s+busybox\\s+10\\.\\d+\\.\\d+\\.\\d+\\s+m1\\.tiny\\s+-\\s+Active\\s+nova\\s+None\\s+Running`),
    );
    expect(errorsShown(text)).toEqual([]);
    const s = await server();
    const tiny = (await api('/compute/v2.1/flavors')).json.flavors.find((f: { name: string }) => f.name === 'm1.tiny');
    expect(s).toMatchObject({ status: 'ACTIVE', name, flavor: { id: tiny.id } });
    expect(s['OS-EXT-STS:power_state']).toBe(1);
  }, 90_000);

  it('shuts it off (SHUTOFF) and starts it again (ACTIVE)', async () => {
    await rowAction('stop', 'Shut Off Instance');
    await b({ op: 'wait_text', text: `Success: Shut Off Instance: ${name}` });
    await rowStatus('Shutoff');
    let text = await shot('instance-shutoff');
    expect(text).toMatch(new RegExp(`${name}[\\s\\S]*Shutoff\\s+nova\\s+None\\s+Shut Down`));
    expect((await waitApi((x) => x.status === 'SHUTOFF'))['OS-EXT-STS:power_state']).toBe(4);
    await rowAction('start', undefined); // Horizon starts without asking
    await b({ op: 'wait_text', text: `Success: Started Instance: ${name}` });
    await rowStatus('Active');
    text = await shot('instance-started');
    expect(text).toMatch(new RegExp(`${name}[\\s\\S]*Active\\s+nova\\s+None\\s+Running`));
    expect(errorsShown(text)).toEqual([]);
    await waitApi((x) => x.status === 'ACTIVE' && !x['OS-EXT-STS:task_state']);
  }, 120_000);

  it('soft-reboots it: back to ACTIVE, with the reboot among its actions', async () => {
    await rowAction('soft_reboot', 'Soft Reboot Instance');
    await b({ op: 'wait_text', text: `Success: Soft Rebooted Instance: ${name}` });
    await rowStatus('Active');
    await waitApi((x) => x.status === 'ACTIVE' && !x['OS-EXT-STS:task_state']);
    const text = await shot('instance-rebooted');
    expect(text).toMatch(new RegExp(`${name}[\\s\\S]*Active\\s+nova\\s+None\\s+Running`));
    const actions = (await api(`/compute/v2.1/servers/${serverId}/os-instance-actions`)).json.instanceActions.map(
      (a: { action: string }) => a.action,
    );
    expect(actions).toEqual(expect.arrayContaining(['create', 'stop', 'start', 'reboot']));
  }, 120_000);

  it("snapshots it from the row's Create Snapshot action: Horizon's message, Active on the Images page and in the API", async () => {
    const t0 = Date.now();
    await rowAction('snapshot', undefined);
    await b({ op: 'fill', xpath: "//form[@id='create_snapshot_form']//input[@id='id_name']", value: snap });
    let text = await shot('snapshot-form');
    expect(text).toMatch(/Create Snapshot[\s\S]*Snapshot Name/);
    await b({ op: 'click', xpath: "//form[@id='create_snapshot_form']//*[@type='submit']" });
    await b({ op: 'wait_text', text: `Success: Snapshot "${snap}" created for instance "${name}"`, timeout: 60 });
    expect((await b({ op: 'url' })).url).toMatch(new RegExp(`^${horizon.url}/project/images/?$`));
    // the Angular Images table does not poll: reload until the snapshot's row says Active
    const activeRow = `//tr[.//a[normalize-space()=${lit(snap)}]]/td[normalize-space()='Active']`;
    const end = Date.now() + 120_000;
    for (;;) {
      await b({ op: 'wait_xpath', xpath: `//tr[.//a[normalize-space()=${lit(snap)}]]`, timeout: 30 });
      if ((await browser.send({ op: 'wait_xpath', xpath: activeRow, timeout: 2 })).ok) break;
      if (Date.now() > end) throw new Error(`snapshot ${snap} not Active on the Images page in 120 s`);
      await b({ op: 'open', url: `${horizon.url}/project/images/` });
    }
    text = await shot('snapshot-images');
    expect(text).toMatch(new RegExp(`${snap}\\s+Snapshot\\s+Active\\s+Private\\s+No\\s+RAW`));
    expect(text).toMatch(/busybox\s+Image\s+Active\s+Public\s+No\s+RAW/);
    expect(text).toContain('Displaying 2 items');
    expect(errorsShown(text)).toEqual([]);
    const images = (await api(`/image/v2/images?name=${snap}`)).json.images;
    expect(images).toHaveLength(1);
    snapId = images[0].id;
    expect(images[0]).toMatchObject({ name: snap, status: 'active', image_type: 'snapshot', instance_uuid: serverId });
    // the detail page, with the instance it was taken from
    await b({ op: 'open', url: `${horizon.url}/ngdetails/OS::Glance::Image/${snapId}` });
    await b({ op: 'wait_text', text: snapId });
    text = await shot('snapshot-detail');
    expect(text).toContain(snap);
    expect(text).toMatch(/Status\s+Active/);
    expect(errorsShown(text)).toEqual([]);
    process.stdout.write(`horizon e2e: snapshot created and Active in ${Date.now() - t0} ms\n`);
    await b({ op: 'open', url: `${horizon.url}/project/instances/` });
    await rowStatus('Active');
    expect(errorsShown(await shot('instance-after-snapshot'))).toEqual([]);
  }, 240_000);

  it('deletes it: the table empties and the API answers 404', async () => {
    await b({ op: 'open', url: `${horizon.url}/project/instances/` });
    await rowAction('delete', 'Delete Instance');
    await b({ op: 'wait_text', text: `Info: Scheduled deletion of Instance: ${name}` });
    await b({ op: 'wait_text', text: 'No items to display.', timeout: 60 });
    const text = await shot('instance-deleted');
    expect(text).toMatch(/Instance Name\s+Image Name[^\n]*\nNo items to display\./);
    expect((await api(`/compute/v2.1/servers/${serverId}`)).status).toBe(404);
    serverGone = true;
  }, 90_000);

  it("deletes the snapshot from the Images page's Delete Image action: gone from the table and the API", async () => {
    await b({ op: 'open', url: `${horizon.url}/project/images/` });
    const snapRow = `//tr[.//a[normalize-space()=${lit(snap)}]]`;
    await b({ op: 'click', xpath: `${snapRow}//*[contains(@class,'dropdown-toggle')]`, timeout: 30 });
    await b({ op: 'click', xpath: `${snapRow}//a[normalize-space()='Delete Image']` });
    await b({ op: 'wait_text', text: 'Confirm Delete Image' });
    expect(await shot('snapshot-delete-confirm')).toContain(`You have selected "${snap}"`);
    await b({ op: 'click', xpath: "//div[contains(@class,'modal-footer')]//button[normalize-space()='Delete Image']" });
    await b({ op: 'wait_text', text: `Success: Deleted Image: ${snap}.`, timeout: 60 });
    await b({ op: 'wait_text', text: 'Displaying 1 item', timeout: 30 });
    const text = await shot('snapshot-deleted');
    // only the toast still names it
    expect(text.split('\n').filter((l) => l.includes(snap))).toEqual([`Success: Deleted Image: ${snap}.`]);
    expect(text).toMatch(/busybox\s+Image\s+Active\s+Public\s+No\s+RAW/);
    expect(errorsShown(text)).toEqual([]);
    expect((await api(`/image/v2/images/${snapId}`)).status).toBe(404);
    expect((await api(`/image/v2/images?name=${snap}`)).json.images).toEqual([]);
    snapGone = true;
  }, 90_000);

  it("leaves nothing behind (Chromium, chromedriver, Horizon, servers), and Horizon's log shows no server error but the Neutron ones", async () => {
    await browser.quit();
    expect(browser.proc.exitCode).toBe(0);
    expect(alive(browser.driverPid)).toBe(false);
    expect(processesNaming(profile)).toEqual([]);
    await stopChild(horizon.proc);
    expect(horizon.proc.signalCode ?? horizon.proc.exitCode).not.toBe('SIGKILL');
    const errors = horizon
      .out()
      .split('\n')
      .filter((l) => /^Internal Server Error: /.test(l))
      .filter((l) => !/^Internal Server Error: \/api\/network\//.test(l));
    expect(errors).toEqual([]);
    // nor any API call novabox answered 404 (Django logs "Not Found: <path>" for each)
    expect(
      horizon
        .out()
        .split('\n')
        .filter((l) => /^Not Found: /.test(l)),
    ).toEqual([]);
    expect(await serve.stop('SIGTERM')).toBe(0);
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(census(root))).toEqual(strip(before));
    process.stdout.write(`horizon e2e: ${step.n} screenshots in ${shots}\n`);
  }, 60_000);
});
