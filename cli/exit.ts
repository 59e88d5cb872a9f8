/**
 * Exit codes of every dfs command, and the one error type commands throw. The table below is
 * the single source: `dfs --help` prints it, `exitForAnswer`/`errorForResponse` map onto it.
 */
import type { ReadStatus } from '../lib/types';

export const EXIT = Object.freeze({
  ok: 0,
  error: 1,
  usage: 2,
  notFound: 3,
  different: 4,
  unavailable: 5,
});

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_HELP = `Exit codes:
  0  success (get: one version, SINGLE, saved; or the version picked with --resolve)
  1  error: network, server 5xx, refusing to overwrite, download failed
  2  usage or invalid input, including a name the server refuses (400)
  3  not found on any store (NOT_FOUND)
  4  the stores hold different versions (DIFFERENT); each was saved side by side
  5  no store answered (503)`;

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
 */
export function errorForResponse(status: number, body: unknown): CliError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const code = typeof b.error === 'string' ? b.error : `Http${status}`;
  const said = typeof b.message === 'string' ? b.message : undefined;
  if (status === 400) return new CliError(EXIT.usage, code, said ?? 'the server refused the request (400)');
  if (status === 503) {
    const unavailable = Array.isArray(b.unavailable) ? b.unavailable.filter((s) => typeof s === 'string') : [];
    const which = unavailable.length > 0 ? ` (${unavailable.join(', ')})` : '';
    return new CliError(EXIT.unavailable, code, `no store answered${which}; nothing can be said about this file`, { unavailable });
  }
  if (status === 404) {
    return new CliError(EXIT.error, code, `the server has no such route (404${said ? `: ${said}` : ''}); is the endpoint the dfs API?`);
  }
  if (status >= 500) return new CliError(EXIT.error, code, `the server failed (${status} ${code})${said ? `: ${said}` : ''}`);
  return new CliError(EXIT.error, code, `the server refused the request (${status} ${code})${said ? `: ${said}` : ''}`);
}
