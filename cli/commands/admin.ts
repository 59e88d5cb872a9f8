/**
 * Locks, tokens, and dfs about itself (version, completion). Parsing and printing only; the
 * work is in locking.ts, token.ts, version.ts and completion.ts.
 */
import type { Command } from 'commander';
import { bashCompletion, zshCompletion } from '../completion';
import { configPath } from '../config';
import { Ctx, type Io } from '../context';
import { EXIT, usageError } from '../exit';
import { COMPLETION_HELP, LOCKS_HELP, LOCK_HELP, TOKEN_CREATE_HELP, TOKEN_HELP, TOKEN_LIST_HELP, TOKEN_REVOKE_HELP, UNLOCK_HELP, VERSION_HELP } from '../help';
import { describeCommand } from '../help-format';
import { checkReason, listLocks, lockFile, parseTtl, unlockFile } from '../locking';
import { clean, describeLocked, describeTokenCreated, describeTokenRevoked, describeUnlocked, lockJson, lockTable, tokenTable, unlockJson } from '../output';
import { parseFileRef } from '../target';
import { createToken, listTokens, revokeToken } from '../token';
import { buildInfo, describeVersion } from '../version';
import type { Exit } from './common';

const commandOf = (args: unknown[]) => args[args.length - 1] as Command;

/** An index counted without some store: the file at it may not be the one `dfs ls` showed. */
const warnIndexes = (ctx: Ctx) => (stores: string[]) => ctx.warn(`${stores.map(clean).join(', ')} did not answer; indexes count only the stores that did`);

export function lockCommands(program: Command, io: Io, exit: Exit): void {
  describeCommand(
    program
      .command('lock')
      .description("lock a file at one store: others' writes into its copy there are held until dfs unlock")
      .argument('<file>', 'INDEX as dfs ls prints it (0, 1, …), or NAME; ./NAME for a name that is a number')
      .option('--at <store>', 'the store to lock it at (default: the first store)')
      .option('--reason <text>', 'why, for others to see in dfs locks (at most 200 characters)')
      .option('--ttl <duration>', 'how long it lasts unless renewed: 30m, 2h, 1d, 1h30m, 3600 (seconds); default 1h, 1m to 7d'),
    LOCK_HELP,
  ).action(async (file: string, ...rest: unknown[]) => {
    const ctx = new Ctx<{ at?: string; reason?: string; ttl?: string }>(io, commandOf(rest));
    const f = ctx.flags;
    const ref = parseFileRef(file);
    const ttl = f.ttl !== undefined ? parseTtl(f.ttl) : undefined;
    const reason = f.reason !== undefined ? checkReason(f.reason) : undefined;
    const result = await lockFile(
      ctx.connect,
      { ref, ...(f.at !== undefined ? { store: f.at } : {}), ...(reason !== undefined ? { reason } : {}), ...(ttl !== undefined ? { ttl } : {}) },
      { unavailable: warnIndexes(ctx) },
    );
    if (ctx.json) ctx.printJson(lockJson(result));
    else ctx.say(describeLocked(result));
    exit(result.exitCode);
  });

  describeCommand(
    program
      .command('unlock')
      .description('unlock a file: its held updates are applied in order (or dropped with --discard)')
      .argument('<file>', 'INDEX as dfs ls prints it (0, 1, …), or NAME; ./NAME for a name that is a number')
      .option('--at <store>', 'the store it is locked at (default: the one store where it is)')
      .option('--force', "take over someone else's lock (shows whose first, and asks)")
      .option('--discard', 'drop the held updates instead of applying them (shows how many first, and asks)')
      .option('-y, --yes', 'do not ask; needed for --force or --discard when stdin is not a terminal')
      .option('--no-wait', 'do not follow a long unlock to its end: it goes on by itself'),
    UNLOCK_HELP,
  ).action(async (file: string, ...rest: unknown[]) => {
    const ctx = new Ctx<{ at?: string; force?: boolean; discard?: boolean; yes?: boolean; wait: boolean }>(io, commandOf(rest));
    const f = ctx.flags;
    const ref = parseFileRef(file);
    const progress = await ctx.progress();
    const result = await ctx.interruptible((signal) =>
      unlockFile(
        ctx.connect,
        { ref, ...(f.at !== undefined ? { store: f.at } : {}), force: Boolean(f.force), discard: Boolean(f.discard), yes: Boolean(f.yes), wait: f.wait },
        { progress, signal, unavailable: warnIndexes(ctx), ...(io.confirm ? { confirm: io.confirm } : {}) },
      ),
    );
    if (ctx.json) ctx.printJson(unlockJson(result));
    else ctx.say(describeUnlocked(result));
    exit(result.exitCode);
  });

  describeCommand(program.command('locks').description('list every lock: file, store, holder, since, expiry, updates held, reason'), LOCKS_HELP).action(
    async (...rest: unknown[]) => {
      const ctx = new Ctx(io, commandOf(rest));
      const result = await listLocks(ctx.connect);
      if (ctx.json) ctx.printJson(result.answer);
      else if (result.answer.locks.length === 0) ctx.say({ out: [], err: ['no locks'] }, 'data');
      else ctx.say({ out: lockTable(result.answer.locks), err: [] }, 'data');
      exit(result.exitCode);
    },
  );
}

export function tokenCommands(program: Command, io: Io, exit: Exit): void {
  const tokens = describeCommand(program.command('token').description("make, list and revoke the API's tokens (needs a write token)"), TOKEN_HELP);

  describeCommand(
    tokens
      .command('create')
      .description('make a token named NAME and print it, once')
      .argument('<name>', 'who the token is for, e.g. ann or ci (a-z, 0-9, "-")')
      .option('--read-only', 'the token may only read (get, ls, watch, sync --dry-run)'),
    TOKEN_CREATE_HELP,
  ).action(async (name: string, ...rest: unknown[]) => {
    const ctx = new Ctx<{ readOnly?: boolean }>(io, commandOf(rest));
    const result = await createToken(ctx.connect, { name, scope: ctx.flags.readOnly ? 'read' : 'write' });
    if (ctx.json) ctx.printJson(result.answer);
    // The token is what was asked for (data); -q leaves out the words around it.
    else ctx.say(describeTokenCreated(result.answer, configPath(io.env)), 'data');
    exit(result.exitCode);
  });

  describeCommand(tokens.command('list').description('list every token: name, scope, when made and by whom'), TOKEN_LIST_HELP).action(async (...rest: unknown[]) => {
    const ctx = new Ctx(io, commandOf(rest));
    const result = await listTokens(ctx.connect);
    if (ctx.json) ctx.printJson(result.answer);
    else if (result.answer.tokens.length === 0) ctx.say({ out: [], err: ['no tokens'] }, 'data');
    else ctx.say({ out: tokenTable(result.answer.tokens), err: [] }, 'data');
    exit(result.exitCode);
  });

  describeCommand(
    tokens
      .command('revoke')
      .description('revoke the token named NAME (asks first unless -y)')
      .argument('<name>', "the token's name, as dfs token list shows it")
      .option('-y, --yes', 'do not ask; needed when stdin is not a terminal'),
    TOKEN_REVOKE_HELP,
  ).action(async (name: string, ...rest: unknown[]) => {
    const ctx = new Ctx<{ yes?: boolean }>(io, commandOf(rest));
    const result = await revokeToken(ctx.connect, { name, yes: Boolean(ctx.flags.yes) }, io.confirm ? { confirm: io.confirm } : {});
    if (ctx.json) ctx.printJson(result.answer);
    else ctx.say(describeTokenRevoked(name));
    exit(result.exitCode);
  });
}

export function selfCommands(program: Command, io: Io, exit: Exit): void {
  describeCommand(program.command('version').description('print the version, commit and build of dfs'), VERSION_HELP).action((...rest: unknown[]) => {
    const ctx = new Ctx(io, commandOf(rest));
    const info = buildInfo(io.env);
    if (ctx.json) ctx.printJson(info);
    else io.stdout(`${describeVersion(info)}\n`);
    exit(EXIT.ok);
  });

  describeCommand(
    program.command('completion').description('print a shell completion script (bash or zsh)').argument('<shell>', 'bash or zsh'),
    COMPLETION_HELP,
  ).action((shell: string) => {
    if (shell === 'bash') io.stdout(bashCompletion(program));
    else if (shell === 'zsh') io.stdout(zshCompletion(program));
    else throw usageError(`no completion for ${JSON.stringify(shell)}; the shells are bash and zsh`, 'Usage');
    exit(EXIT.ok);
  });
}
