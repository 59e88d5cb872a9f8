/**
 * `dfs token create|list|revoke`: the API's tokens (POST /tokens, GET /tokens,
 * DELETE /tokens/NAME), each needing a write token (or `--via lambda`, which IAM gates).
 * No printing here; the caller formats the result (cli/output.ts).
 */
import { isTokenInfo, tokensOf as sharedTokensOf, type TokenInfo } from '../client/answers';
import type { Transport } from './client';
import { CliError, cliGuard, EXIT, errorForResponse, usageError, type ExitCode } from './exit';

export type Scope = 'read' | 'write';

/**
 * A token's name: the identity recorded as `who` in the journal, tombstones and locks. The
 * server's rule (lib/tokens.ts TOKEN_NAME), checked here so a bad name fails before any request;
 * the CLI bundle holds no server code, hence the copy.
 */
export const TOKEN_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export type { TokenInfo };

export interface CreatedToken extends TokenInfo {
  /** The token itself: the only time the server shows it. */
  token: string;
}

export interface TokenCreateResult {
  answer: CreatedToken;
  exitCode: ExitCode;
}

export interface TokenListResult {
  answer: { tokens: TokenInfo[] };
  exitCode: ExitCode;
}

export interface TokenRevokeResult {
  answer: { revoked: string };
  exitCode: ExitCode;
}

export interface RevokeIo {
  /** Asks a yes/no question on the terminal; absent when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
}

function checkName(name: string): void {
  if (!TOKEN_NAME.test(name)) {
    throw usageError(
      `invalid token name ${JSON.stringify(name)}: 1 to 40 of a-z, 0-9 and "-", starting with a letter or digit`,
      'InvalidTokenName',
    );
  }
}

/**
 * Makes a token named NAME (`read` scope with `--read-only`, else `write`). Throws CliError:
 * usage (2) for a bad name, before any request; 1 when the name is taken (409) or the answer
 * holds no token; the mapped error of any other refusal (8: not allowed).
 */
export async function createToken(connect: () => Transport, opts: { name: string; scope: Scope }): Promise<TokenCreateResult> {
  checkName(opts.name);
  const { status, body } = await connect().send({ op: 'createToken', name: opts.name, scope: opts.scope });
  if (status !== 201 && status !== 200) throw errorForResponse(status, body);
  const token = (body as { token?: unknown } | null)?.token;
  if (!isTokenInfo(body) || typeof token !== 'string' || token === '') {
    throw new CliError(EXIT.error, 'BadResponse', `the server answered ${status} to POST /tokens without the token`);
  }
  const { name, scope, created, createdBy } = body;
  return { answer: { name, scope, created, createdBy, token }, exitCode: EXIT.ok };
}

/** Every token's name, scope and making. Throws the mapped error of a refusal (8: not allowed). */
export async function listTokens(connect: () => Transport): Promise<TokenListResult> {
  return { answer: { tokens: tokensOf(await connect().send({ op: 'listTokens' })) }, exitCode: EXIT.ok };
}

/** The tokens of a 200 to GET /tokens; any other reply becomes its CliError. */
export const tokensOf = cliGuard(sharedTokensOf);

/**
 * Revokes NAME, after asking unless `yes` (like `dfs rm`). Throws CliError: usage (2) for a bad
 * name or when there is no terminal to ask on and no `-y`; 1 when the answer is no; 3 when
 * there is no such token; the mapped error of any other refusal (8: not allowed).
 */
export async function revokeToken(connect: () => Transport, opts: { name: string; yes: boolean }, io: RevokeIo): Promise<TokenRevokeResult> {
  checkName(opts.name);
  if (!opts.yes) {
    if (!io.confirm) {
      throw usageError(`not revoking ${opts.name}: stdin is not a terminal to confirm on; add -y to revoke without asking`, 'ConfirmationNeeded');
    }
    if (!(await io.confirm(`revoke token ${opts.name}? Whoever uses it is refused from then on [y/N] `))) {
      throw new CliError(EXIT.error, 'Cancelled', `token ${opts.name} not revoked`);
    }
  }
  const { status, body } = await connect().send({ op: 'revokeToken', name: opts.name });
  // Only the API's own NotFound: a 404 from something else (a wrong endpoint) is not "no such token".
  if (status === 404 && (body as { error?: unknown } | null)?.error === 'NotFound') {
    throw new CliError(EXIT.notFound, 'NotFound', `no token named ${opts.name}`);
  }
  if (status !== 200) throw errorForResponse(status, body);
  const revoked = (body as { revoked?: unknown } | null)?.revoked;
  if (revoked !== opts.name) throw new CliError(EXIT.error, 'BadResponse', `the server answered DELETE /tokens/${opts.name} without naming it revoked`);
  return { answer: { revoked: opts.name }, exitCode: EXIT.ok };
}
