/**
 * `dfs completion bash|zsh`: a completion script made from the commands and flags commander
 * knows, so it never falls behind them. Names in the stores are not completed (that would send a
 * request per Tab); files and folders are, where a command takes them.
 */
import type { Command } from 'commander';

interface Spec {
  path: string[];
  flags: Array<{ names: string[]; description: string; takesValue: boolean }>;
  subcommands: Array<{ name: string; description: string }>;
  /** The command takes local paths (put) rather than names in the stores. */
  files: boolean;
}

/** Commands that take local files as arguments. */
const TAKES_FILES = new Set(['put']);

function specs(cmd: Command, path: string[] = [], globals: Spec['flags'] = []): Spec[] {
  const flags = [
    ...globals,
    ...cmd.options.filter((o) => !o.hidden).map((o) => ({ names: [o.short, o.long].filter((n): n is string => Boolean(n)), description: o.description, takesValue: o.required || o.optional })),
  ];
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  const own: Spec = { path, flags, subcommands: subs.map((c) => ({ name: c.name(), description: c.description() })), files: TAKES_FILES.has(path[path.length - 1] ?? '') };
  const inherited = path.length === 0 ? flags : globals;
  return [own, ...subs.flatMap((c) => specs(c, [...path, c.name()], inherited))];
}

const words = (xs: string[]) => xs.join(' ').replace(/'/g, '');

/** A bash completion script for `program`. */
export function bashCompletion(program: Command): string {
  const all = specs(program);
  const cases = all
    .map((s) => {
      const key = s.path.join(' ') || '';
      const options = words(s.flags.flatMap((f) => f.names));
      const subs = words(s.subcommands.map((c) => c.name));
      return `    '${key}') subs='${subs}'; flags='${options}'; files=${s.files ? 1 : 0} ;;`;
    })
    .join('\n');
  return `# bash completion for dfs: source <(dfs completion bash), or save it as
# ~/.local/share/bash-completion/completions/dfs
_dfs() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path='' subs='' flags='' files=0 i w
  # The command path: the words before the cursor that name (sub)commands.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    case "\${path:+$path }$w" in
${all.filter((s) => s.path.length > 0).map((s) => `      '${s.path.join(' ')}') path='${s.path.join(' ')}' ;;`).join('\n')}
    esac
  done
  case "$path" in
${cases}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
  elif [[ -n $subs ]]; then
    COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
  elif [[ $files == 1 ]]; then
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}
complete -o default -F _dfs dfs
`;
}

/** In a zsh spec `[…]` and `:` are syntax. */
const zshText = (s: string) => s.replace(/[[\]:'\\]/g, (c) => (c === "'" ? '' : `\\${c}`));

/** A zsh completion script for `program`. */
export function zshCompletion(program: Command): string {
  const all = specs(program);
  const fn = (s: Spec) => `_dfs${s.path.map((p) => `_${p.replace(/-/g, '_')}`).join('')}`;
  const bodies = all
    .map((s) => {
      const flagSpecs = s.flags.flatMap((f) => f.names.map((n) => `'${n}[${zshText(f.description)}]${f.takesValue ? ':value:' : ''}'`));
      if (s.subcommands.length > 0) {
        const list = s.subcommands.map((c) => `'${c.name}:${zshText(c.description)}'`).join(' ');
        return `${fn(s)}() {
  local -a commands; commands=(${list})
  _arguments -C ${flagSpecs.join(' ')} '1: :->command' '*:: :->rest'
  case $state in
    command) _describe 'command' commands ;;
    rest) case $words[1] in
${s.subcommands.map((c) => `      ${c.name}) ${fn({ ...s, path: [...s.path, c.name] })} ;;`).join('\n')}
    esac ;;
  esac
}`;
      }
      return `${fn(s)}() {
  _arguments ${flagSpecs.join(' ')} '*:${s.files ? 'file:_files' : 'name: '}'
}`;
    })
    .join('\n\n');
  return `#compdef dfs
# zsh completion for dfs: save it as _dfs in a folder of your $fpath, or: source <(dfs completion zsh)

${bodies}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _dfs "$@"
else
  compdef _dfs dfs
fi
`;
}
