/**
 * Help in gh's layout: what the command does, USAGE, ARGUMENTS, FLAGS, INHERITED FLAGS,
 * EXAMPLES, LEARN MORE. What every command shares (where the API is, the token, exit codes) is
 * printed once, in `dfs --help`; a command's help points there.
 */
import type { Command, Help } from 'commander';
import { EXIT_HELP } from './exit';
import { CONNECTION_HELP } from './help';
import { widthOf } from './width';

const details = new WeakMap<Command, { text: string; examples: string[] }>();

/**
 * Gives `cmd` its long help: `text` as help.ts writes it, its "Examples:" block (if any) split
 * off into EXAMPLES.
 */
export function describeCommand(cmd: Command, text: string): Command {
  const [body = '', examples = ''] = text.split(/\n?Examples:\n/);
  details.set(cmd, { text: body.trim(), examples: examples.split('\n').filter((l) => l.trim() !== '').map((l) => l.replace(/^ {2}/, '')) });
  return cmd;
}

/** The root's extra sections, given by main.ts. */
let rootExamples: string[] = [];
export function setRootExamples(text: string): void {
  rootExamples = text.split('\n').slice(1).filter((l) => l.trim() !== '').map((l) => l.replace(/^ {2}/, ''));
}

function section(title: string, lines: string[]): string {
  return lines.length === 0 ? '' : `${title}\n${lines.map((l) => (l === '' ? '' : `  ${l}`)).join('\n')}\n\n`;
}

/** `term  description`, terms padded to one column, descriptions wrapped under themselves. */
function twoColumns(rows: Array<[string, string]>, width = 100): string[] {
  const termWidth = Math.max(0, ...rows.map(([t]) => widthOf(t)));
  return rows.flatMap(([term, desc]) => {
    const room = Math.max(30, width - termWidth - 4);
    const lines = wrap(desc, room);
    return lines.map((l, i) => (i === 0 ? `${term.padEnd(termWidth)}  ${l}` : `${' '.repeat(termWidth)}  ${l}`).trimEnd());
  });
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  out.push(line);
  return out;
}

const full = (cmd: Command): string => (cmd.parent ? `${full(cmd.parent)} ${cmd.name()}` : cmd.name());

/** Commander's formatHelp replaced: see the module comment. */
export function formatHelp(cmd: Command, helper: Help): string {
  const root = !cmd.parent;
  const more = details.get(cmd);
  let out = `${helper.commandDescription(cmd)}\n\n`;
  if (more?.text) out += `${more.text}\n\n`;

  const args = helper.visibleArguments(cmd).map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`) + (a.variadic ? '...' : ''));
  const subs = helper.visibleCommands(cmd).filter((c) => c.name() !== 'help');
  const usage = subs.length > 0 ? `${full(cmd)} <command> [flags]` : `${full(cmd)}${args.length > 0 ? ` ${args.join(' ')}` : ''} [flags]`;
  out += section('USAGE', [usage]);

  if (subs.length > 0) out += section(root ? 'COMMANDS' : 'AVAILABLE COMMANDS', twoColumns(subs.map((c) => [c.name(), helper.subcommandDescription(c)])));
  const argRows = helper.visibleArguments(cmd).filter((a) => a.description).map((a): [string, string] => [a.name(), a.description]);
  out += section('ARGUMENTS', twoColumns(argRows));
  out += section('FLAGS', twoColumns(helper.visibleOptions(cmd).map((o) => [helper.optionTerm(o), helper.optionDescription(o)])));
  if (!root) out += section('INHERITED FLAGS', twoColumns(helper.visibleGlobalOptions(cmd).map((o) => [helper.optionTerm(o), helper.optionDescription(o)])));

  if (root) {
    out += section('EXAMPLES', rootExamples);
    out += section('WHERE THE API IS', CONNECTION_HELP.split('\n'));
    out += section('EXIT CODES', EXIT_HELP.split('\n').slice(1).map((l) => l.replace(/^ {2}/, '')));
    out += section('LEARN MORE', [
      'dfs <command> --help     what a command does, its flags and examples',
      'dfs completion bash|zsh  shell completion (see dfs completion --help)',
      'README.md                install, the local stack, deploying, how it behaves',
    ]);
  } else {
    out += section('EXAMPLES', more?.examples ?? []);
    out += section('LEARN MORE', ['dfs --help   where the API is, the token, and every exit code', ...(subs.length > 0 ? [`${full(cmd)} <command> --help   a command's flags and examples`] : [])]);
  }
  return out.replace(/\n+$/, '\n');
}
