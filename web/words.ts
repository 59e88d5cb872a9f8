/**
 * Errors and outcomes in words for the page: never raw JSON, never nothing. Pure; the answers
 * come through client/answers.ts guards, so a refusal is an AnswerError with the API's code.
 */
import { AnswerError, type StoreOutcome } from '../client/answers';
import { UploadAborted, UploadInterrupted } from '../client/multipart';
import { formatTime } from './format';

/** The token was refused: the page asks for one again. */
export const isSignedOut = (err: unknown): boolean => err instanceof AnswerError && err.code === 'Unauthorized';

/** What went wrong, in a sentence; `what` names the action (`Deleting fileA.txt`). */
export function errorWords(err: unknown, what?: string): string {
  const lead = what ? `${what} failed: ` : '';
  if (err instanceof UploadInterrupted) return `${what ?? 'The upload'} was cancelled; nothing was stored.`;
  if (err instanceof UploadAborted) {
    const after = err.stage === 'complete' ? 'the file may or may not be stored; look at the list' : 'nothing was stored';
    return `${lead}${causeWords(err.cause)} (${after}).`;
  }
  return `${lead}${causeWords(err)}`;
}

function causeWords(err: unknown): string {
  if (err instanceof AnswerError) return answerWords(err);
  // fetch rejects with a TypeError when no answer came at all.
  if (err instanceof TypeError) return 'the API could not be reached. Check the connection and try again.';
  if (err instanceof Error && err.name === 'AbortError') return 'it was cancelled.';
  return err instanceof Error ? err.message : String(err);
}

function answerWords(err: AnswerError): string {
  const body = (err.body ?? {}) as { holder?: unknown; since?: unknown; unavailable?: unknown; key?: unknown };
  switch (err.code) {
    case 'Unauthorized':
      return 'not signed in: the server did not accept the token. Sign in with a valid token.';
    case 'Forbidden':
      return `not allowed: ${err.message}`;
    case 'InvalidKey':
      return `invalid name: ${err.message}`;
    case 'LockHeld':
      return typeof body.holder === 'string'
        ? `the file is locked by ${body.holder}${typeof body.since === 'string' ? ` since ${formatTime(body.since)} UTC` : ''}.`
        : `the file is locked: ${err.message}`;
    case 'NotFound':
    case 'Http404':
      return `not found: ${err.message}`;
    case 'UnknownStore':
      return `unknown store: ${err.message}`;
    case 'PayloadTooLarge':
      return `too large: ${err.message}`;
    case 'Unavailable': {
      const stores = Array.isArray(body.unavailable) ? ` (${body.unavailable.join(', ')})` : '';
      return `store unavailable${stores}: ${err.message}${err.unavailableMeans ? `; ${err.unavailableMeans}` : ''}.`;
    }
    case 'BadResponse':
      return `the server answered with something the page does not understand (${err.message}). Is this the s3-dfs API?`;
    case 'Internal':
      return 'the server failed (an internal error, logged on its side). Try again.';
    default:
      return err.message;
  }
}

/**
 * What a write or delete did, store by store: `stored on server1, server2`, or with the stores
 * that failed and why, and those that hold it in a lock's queue.
 */
export function outcomeWords(results: StoreOutcome[], done = 'stored'): { text: string; ok: boolean } {
  const okStores = results.filter((r) => r.ok && r.held === undefined).map((r) => r.store);
  const held = results.filter((r) => r.held !== undefined).map((r) => `${r.store} holds it in its lock's queue (#${r.held})`);
  const failed = results.filter((r) => !r.ok && r.held === undefined).map((r) => `${r.store}: ${r.error ?? r.code ?? 'failed'}`);
  const parts = [okStores.length ? `${done} on ${okStores.join(', ')}` : `not ${done} anywhere`, ...held, ...failed];
  return { text: parts.join('; '), ok: failed.length === 0 };
}
