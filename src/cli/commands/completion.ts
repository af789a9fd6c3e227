/**
 * `novabox completion bash|zsh`: a completion script for the shell, made from the
 * program's own command tree (every group and verb, their options, choices and
 * arguments), so it cannot drift from what the CLI accepts. Completing costs no Node
 * start: the tree is written into the script; only the names of servers, images,
 * flavors and keypairs are asked of novabox itself (`... list -f value -c Name`) when an
 * argument or option wants one. zsh uses the same function through bashcompinit.
 */
import { Argument, type Command, type Option } from 'commander';
import type { CliContext } from '../context.js';

export const SHELLS = ['bash', 'zsh'] as const;

/** What to offer for a value: a fixed list, names of a kind, or files. */
type ValueKind = { choices: string[] } | { names: 'server' | 'image' | 'flavor' | 'keypair' | 'network' } | 'file';

/** The kind of name an argument or an option's value is, from its name. */
function valueKind(name: string, choices?: readonly string[]): ValueKind {
  if (choices?.length) return { choices: [...choices] };
  const n = name.replace(/^-+/, '').replace(/\.\.\.$/, '');
  if (/^(server|servers|container)$/.test(n)) return { names: 'server' };
  if (/^(image|images)$/.test(n)) return { names: 'image' };
  if (/^flavor$/.test(n)) return { names: 'flavor' };
  if (/^key-?name$/.test(n)) return { names: 'keypair' };
  return 'file';
}

interface Node {
  path: string;
  commands: string[];
  options: Option[];
  args: { name: string; variadic: boolean; choices?: readonly string[] }[];
}

function walk(cmd: Command, path: string[], out: Node[]): void {
  const help = cmd.createHelp();
  const subs = help.visibleCommands(cmd).filter((c) => c.name() !== 'help');
  out.push({
    path: path.join(' '),
    commands: subs.map((c) => c.name()),
    options: help.visibleOptions(cmd),
    args: cmd.registeredArguments.map((a) => ({ name: a.name(), variadic: a.variadic, choices: a.argChoices })),
  });
  for (const c of subs) walk(c, [...path, c.name()], out);
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function kindWord(k: ValueKind): string {
  if (k === 'file') return 'file';
  if ('names' in k) return `names:${k.names}`;
  return `choices:${k.choices.join(' ')}`;
}

/** The bash completion script for the program's command tree. */
export function bashScript(program: Command, bin = 'novabox'): string {
  const nodes: Node[] = [];
  // keys start with '^' (the program): bash refuses an empty key
  walk(program, ['^'], nodes);
  const lines: string[] = [];
  for (const n of nodes) {
    const key = q(n.path);
    lines.push(`_novabox_cmds[${key}]=${q(n.commands.join(' '))}`);
    const flags = n.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
    lines.push(`_novabox_opts[${key}]=${q(flags.join(' '))}`);
    for (const o of n.options) {
      if (!(o.required || o.optional)) continue;
      const kind = kindWord(valueKind(o.long ?? o.short ?? '', o.argChoices));
      for (const f of [o.long, o.short]) if (f) lines.push(`_novabox_vals[${q(`${n.path} ${f}`)}]=${q(kind)}`);
    }
    n.args.forEach((a, i) => {
      lines.push(`_novabox_args[${q(`${n.path} ${i}`)}]=${q(kindWord(valueKind(a.name, a.choices)))}`);
      if (a.variadic) lines.push(`_novabox_args[${q(`${n.path} +`)}]=${q(kindWord(valueKind(a.name, a.choices)))}`);
    });
  }
  return `# bash completion for ${bin} (novabox completion bash): source it, or put it in
# /etc/bash_completion.d/${bin}
declare -gA _novabox_cmds _novabox_opts _novabox_vals _novabox_args
${lines.join('\n')}

_novabox_names() {
  local what=$1
  case "$what" in
    server) ${bin} server list -f value -c Name 2>/dev/null ;;
    image) ${bin} image list -f value -c Name 2>/dev/null ;;
    flavor) ${bin} flavor list -f value -c Name 2>/dev/null ;;
    keypair) ${bin} keypair list -f value -c Name 2>/dev/null ;;
  esac
}

_novabox_offer() {
  local kind=$1 cur=$2
  case "$kind" in
    choices:*) mapfile -t COMPREPLY < <(compgen -W "\${kind#choices:}" -- "$cur") ;;
    names:*) mapfile -t COMPREPLY < <(compgen -W "$(_novabox_names "\${kind#names:}")" -- "$cur") ;;
    *) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null ;;
  esac
}

_novabox() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path='^' i=1 w npos=0 expect=''
  COMPREPLY=()
  while ((i < COMP_CWORD)); do
    w=\${COMP_WORDS[i]}
    if [[ -n $expect ]]; then expect=''
    elif [[ $w == -- ]]; then return 0   # a command line for the container: nothing of ours
    elif [[ $w == -*=* ]]; then :
    elif [[ $w == -* ]]; then [[ -n \${_novabox_vals["$path $w"]+x} ]] && expect=$w
    elif ((npos == 0)) && [[ " \${_novabox_cmds["$path"]} " == *" $w "* ]]; then path="$path $w"
    else npos=$((npos + 1))
    fi
    i=$((i + 1))
  done
  if [[ -n $expect ]]; then _novabox_offer "\${_novabox_vals["$path $expect"]}" "$cur"; return 0; fi
  if [[ $cur == --*=* ]]; then
    local flag=\${cur%%=*}
    [[ -n \${_novabox_vals["$path $flag"]+x} ]] && { _novabox_offer "\${_novabox_vals["$path $flag"]}" "\${cur#*=}"; COMPREPLY=("\${COMPREPLY[@]/#/$flag=}"); }
    return 0
  fi
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "\${_novabox_opts["$path"]}" -- "$cur"); return 0
  fi
  if [[ -n \${_novabox_cmds["$path"]} ]] && ((npos == 0)); then
    mapfile -t COMPREPLY < <(compgen -W "\${_novabox_cmds["$path"]}" -- "$cur"); return 0
  fi
  local kind=\${_novabox_args["$path $npos"]:-\${_novabox_args["$path +"]:-}}
  [[ -n $kind ]] && _novabox_offer "$kind" "$cur"
  return 0
}
complete -F _novabox ${bin}
`;
}

/** zsh: the bash function through zsh's bashcompinit. */
export function zshScript(program: Command, bin = 'novabox'): string {
  return `#compdef ${bin}
# zsh completion for ${bin} (novabox completion zsh): source it from ~/.zshrc after compinit
autoload -U +X bashcompinit && bashcompinit
${bashScript(program, bin)}`;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(novabox completion bash)')
    .addArgument(new Argument('<shell>', `the shell: ${SHELLS.join(' or ')}`).choices(SHELLS))
    .addHelpText(
      'after',
      `
bash: source <(novabox completion bash), or novabox completion bash > /etc/bash_completion.d/novabox
zsh:  source <(novabox completion zsh) in ~/.zshrc, after compinit`,
    )
    .action((shell: (typeof SHELLS)[number]) => {
      ctx.stdout(shell === 'bash' ? bashScript(program) : zshScript(program));
    });
}
