/**
 * Exit codes of every dfs command, and the one error type commands throw. The table below is
 * the single source: `dfs --help` prints it, `exitForAnswer`/`errorForResponse` map onto it.
 */
import type { ReadStatus, StoreOutcome } from '../lib/types';
import { AnswerError, writeAnswerOf as sharedWriteAnswerOf } from '../client/answers';

export const EXIT = Object.freeze({
  ok: 0,
  error: 1,
  usage: 2,
  notFound: 3,
  different: 4,
  unavailable: 5,
  partial: 6,
  refused: 7,
  notAllowed: 8,
  interrupted: 130,
});

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_HELP = `Exit codes:
  0  success (get: one version, SINGLE, saved; or the version picked with --resolve;
     sync: nothing differs, or every step applied; watch: Ctrl-C or --count reached;
     unlock: released, or going on in the background with --no-wait)
  1  error: network, server 5xx, refusing to overwrite, download failed; sync: some steps
     failed; rm, token revoke, unlock: the question answered no; watch: --timeout before
     --count events; token create: the name is taken
  2  usage or invalid input, including a name the server refuses (400); put: FILE missing,
     a folder without files, - without --as, two files with one name; a config file with
     an unknown key or a bad value; rm, token revoke, unlock: no -y and no terminal to ask on; lock, unlock:
     an INDEX that is negative, not a whole number or past the listing's end; lock: a
     --ttl or --reason out of range, an unknown store; a config file holding a token that
     others may read
  3  not found on any store (NOT_FOUND; get PREFIX/: nothing under it); token revoke: no such token; lock: no store holds
     the file; unlock: the file is not locked (at that store)
  4  the stores hold different versions (get: DIFFERENT, each saved side by side; cat:
     nothing written without --resolve; stat; sync --dry-run: differences found)
  5  no store answered, or none took the write (503)
  6  partial: some stores failed (put, rm); the others hold the change
  7  refused by a safety guard (sync: a store unavailable or empty, or over 50 % of a
     store deleted; --force overrides. put --to STORE: another store holds a newer
     version that would replace it; --touch makes yours the newest. lock, unlock, put:
     someone else holds the lock (LockHeld); unlock --force takes it over)
  8  not allowed: no token, or one the server refused (401: revoked, mistyped, of
     another stack), or a read-only token for a write (403)
  130  interrupted (Ctrl-C), saying what was left: put aborts its uploads in flight; get
     removes the file in progress; unlock stops waiting, the unlock goes on in the background
  Several files (put DIR, get PREFIX/): 0 when all went well, else the first failure's code
  (6 when every file was stored but some not on every store)`;

/**
 * A failure a command reports to the user: `code` is the JSON `error` field (the server's own code
 * when it came from the server), `details` are extra JSON fields such as `existing` or `unavailable`.
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

export const usageError = (message: string, code = 'Usage') => new CliError(EXIT.usage, code, message);

/** The exit code once a read answer is in hand; `resolved` means the user picked one version. */
export function exitForAnswer(status: ReadStatus, resolved = false): ExitCode {
  switch (status) {
    case 'SINGLE':
      return EXIT.ok;
    case 'DIFFERENT':
      return resolved ? EXIT.ok : EXIT.different;
    case 'NOT_FOUND':
      return EXIT.notFound;
  }
}

/**
 * Turns an error answer (anything but 200 and a 404 carrying `status: NOT_FOUND`) into a CliError.
 * The server's `error` code and `message` are kept; a 500 says only "Internal", by contract.
 * `unavailableMeans` ends the message of a 503 ("nothing can be listed", …).
 */
export function errorForResponse(status: number, body: unknown, unavailableMeans = 'nothing can be said about this file'): CliError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const code = typeof b.error === 'string' ? b.error : `Http${status}`;
  const said = typeof b.message === 'string' ? b.message : undefined;
  if (status === 400) return new CliError(EXIT.usage, code, said ?? 'the server refused the request (400)');
  if (status === 503) {
    const unavailable = Array.isArray(b.unavailable) ? b.unavailable.filter((s) => typeof s === 'string') : [];
    const which = unavailable.length > 0 ? ` (${unavailable.join(', ')})` : '';
    return new CliError(EXIT.unavailable, code, `no store answered${which}; ${unavailableMeans}`, { unavailable });
  }
  if (status === 409 && code === 'Overruled') {
    const newer = typeof b.newer === 'object' && b.newer !== null ? { newer: b.newer } : {};
    return new CliError(EXIT.refused, code, `not stored: ${said ?? 'another store holds a newer version'}`, { ...newer, hint: 'dfs put --touch' });
  }
  if (status === 409 && code === 'LockHeld') {
    const holder = typeof b.holder === 'string' ? { holder: b.holder } : {};
    const since = typeof b.since === 'string' ? { since: b.since } : {};
    return new CliError(EXIT.refused, code, said ?? `locked by ${b.holder ?? 'someone else'}`, { ...holder, ...since });
  }
  if (status === 401 || status === 403) return notAllowedError(status, body);
  if (status === 404) {
    return new CliError(EXIT.error, code, `the server has no such route (404${said ? `: ${said}` : ''}); is the endpoint the dfs API?`);
  }
  if (status >= 500) return new CliError(EXIT.error, code, `the server failed (${status} ${code})${said ? `: ${said}` : ''}`);
  return new CliError(EXIT.error, code, `the server refused the request (${status} ${code})${said ? `: ${said}` : ''}`);
}

/** What a "not allowed" message can say about the token, never the token itself. */
export interface TokenHint {
  /** Where the token sent came from (`DFS_TOKEN`, a file's path); absent when none was sent. */
  tokenFrom?: string;
  /** The config file a token can go in. */
  configPath?: string;
  /** The token came from the local stack's file, which `npm start` renews. */
  fromLocalStack?: boolean;
}

/**
 * The exit-8 error of a 401 (no token, or one the server does not take) or a 403 (a token
 * without the scope needed). The message says where the token came from and how to get one;
 * `details.tokenFrom` carries the source for --json.
 */
export function notAllowedError(status: 401 | 403, body: unknown, hint: TokenHint = {}): CliError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const said = typeof b.message === 'string' ? b.message : undefined;
  const from = hint.tokenFrom !== undefined ? { tokenFrom: hint.tokenFrom } : {};
  if (status === 403) {
    const code = typeof b.error === 'string' ? b.error : 'Forbidden';
    const which = hint.tokenFrom !== undefined ? ` (the token from ${hint.tokenFrom})` : '';
    return new CliError(EXIT.notAllowed, code, `not allowed: ${said ?? 'the server refused the request (403)'}${which}`, from);
  }
  const code = typeof b.error === 'string' ? b.error : 'Unauthorized';
  const where = hint.configPath !== undefined ? `"token" in ${hint.configPath}` : '"token" in the config file';
  const renew = hint.fromLocalStack ? 'restart the local stack (npm start) to renew it, or ' : '';
  const what = hint.tokenFrom !== undefined ? `the token from ${hint.tokenFrom} was refused (${said ?? '401'})` : (said ?? 'the server wants a token (401)');
  return new CliError(
    EXIT.notAllowed,
    code,
    `not signed in: ${what}; ${renew}set DFS_TOKEN, or ${where} (a write token can make one: dfs token create NAME)`,
    from,
  );
}

/**
 * The CliError of an answer a shared guard (client/answers.ts) did not expect: a refusal is
 * mapped by errorForResponse (with what a 503 means for that request), a malformed answer is
 * BadResponse (exit 1). Anything else is returned as it is.
 */
export function cliErrorOf(err: unknown): unknown {
  if (!(err instanceof AnswerError)) return err;
  if (err.kind === 'malformed') return new CliError(EXIT.error, 'BadResponse', err.message, {}, { cause: err });
  return errorForResponse(err.status, err.body, err.unavailableMeans);
}

/** A shared answer guard whose AnswerErrors become CliErrors. */
export function cliGuard<A extends unknown[], T>(guard: (...args: A) => T): (...args: A) => T {
  return (...args) => {
    try {
      return guard(...args);
    } catch (err) {
      throw cliErrorOf(err);
    }
  };
}

/**
 * The WriteAnswer of a PUT, DELETE or complete: 200 (every store), 207 (some), 503 (none) all
 * carry one. Any other reply, or a 503 without results, becomes its CliError (`noneMeans` ends
 * the message of a bare 503).
 */
export const writeAnswerOf = cliGuard(sharedWriteAnswerOf);

/** 0 when every store took the change, 6 when some did, 5 when none did. */
export function exitForResults(results: StoreOutcome[]): ExitCode {
  const ok = results.filter((r) => r.ok).length;
  if (results.length > 0 && ok === results.length) return EXIT.ok;
  return ok > 0 ? EXIT.partial : EXIT.unavailable;
}
