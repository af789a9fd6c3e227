import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bashScript, zshScript } from '../../../src/cli/commands/completion.js';
import { buildProgram } from '../../../src/cli/main.js';
import { newContext } from '../../../src/cli/context.js';

// The script is made from the real command tree; bash runs it as it would on a TAB. The
// names of servers and images come from `novabox ... list -f value -c Name`: here a
// stand-in `novabox` on PATH answers them (the script is under test, not the lists).
const program = buildProgram(newContext(['completion', 'bash']), ['completion', 'bash']);
const script = bashScript(program);
const dir = mkdtempSync(join(tmpdir(), 'nb-completion-'));
writeFileSync(join(dir, 'completion.sh'), script);
writeFileSync(
  join(dir, 'novabox'),
  `#!/bin/sh
case "$1 $2" in
  "server list") printf 'web1\\nweb2\\ndb\\n' ;;
  "image list") printf 'busybox\\ndebian-bookworm\\n' ;;
  "flavor list") printf 'm1.tiny\\nm1.small\\n' ;;
esac
`,
);
chmodSync(join(dir, 'novabox'), 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function complete(line: string): string[] {
  const words = line.split(' ');
  const res = spawnSync(
    'bash',
    [
      '-c',
      `source ${dir}/completion.sh; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _novabox; printf '%s\\n' "\${COMPREPLY[@]}"`,
      'bash',
      ...words,
    ],
    { encoding: 'utf8', cwd: dir, env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } },
  );
  expect(res.stderr).toBe('');
  return res.stdout.split('\n').filter(Boolean);
}

describe('novabox completion bash', () => {
  it.each<[string, string[]]>([
    ['novabox se', ['server', 'serve']],
    ['novabox server cr', ['create']],
    ['novabox server create --fl', ['--flavor']],
    ['novabox server create --userns ', ['auto', 'host']],
    ['novabox server create --flavor m1.', ['m1.tiny', 'm1.small']],
    ['novabox server create --image deb', ['debian-bookworm']],
    ['novabox server list -f ', ['csv', 'json', 'table', 'value', 'yaml']],
    ['novabox server list --format=js', ['--format=json']],
    ['novabox server show w', ['web1', 'web2']],
    ['novabox server delete web1 d', ['db']],
    ['novabox --debug server stop --all w', ['web1', 'web2']],
    ['novabox image delete b', ['busybox']],
    ['novabox run --rm busybox -- ', []],
    ['novabox completion ', ['bash', 'zsh']],
  ])('%j', (line, want) => {
    expect(complete(line).sort()).toEqual(want.sort());
  });

  it('offers every visible verb of server, and no hidden one', () => {
    const verbs = complete('novabox server ');
    expect(verbs).toEqual(expect.arrayContaining(['create', 'list', 'show', 'exec', 'logs', 'cp', 'stats', 'delete']));
    expect(verbs).not.toContain('_exited');
  });

  it('zsh gets the same function through bashcompinit', () => {
    const z = zshScript(program);
    expect(z.startsWith('#compdef novabox\n')).toBe(true);
    expect(z).toContain('bashcompinit');
    expect(z).toContain(script);
  });
});
