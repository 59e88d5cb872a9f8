/**
 * `dfs watch`: follows the journal (GET /events?after=ID) and hands each event to the caller
 * as it comes. The first call, without `after`, gets the last minute; each later one passes the
 * `next` of the previous answer. Polls every 300 ms, at once again while the answer says `more`.
 * No printing here; the caller formats the events (cli/output.ts).
 */
import type { EventPage, JournalEvent } from '../lib/types';
import { eventPageOf as sharedEventPageOf } from '../client/answers';
import { pause } from '../client/pause';
import type { Transport } from './client';
import { CliError, cliGuard, EXIT, type ExitCode } from './exit';

export const WATCH_DEFAULTS = Object.freeze({
  intervalMs: 300,
  /** After a failed poll, wait this long, doubling up to `maxRetryMs`. */
  retryMs: 1000,
  maxRetryMs: 10_000,
});

export interface WatchOptions {
  /** Stop after this many events. */
  count?: number;
  /** Stop after this long. */
  timeoutMs?: number;
  /** Leave out what happened before the watch began (the first answer's last minute). */
  sinceStart: boolean;
  intervalMs?: number;
  /** First wait after a failed poll (WATCH_DEFAULTS.retryMs). */
  retryMs?: number;
}

export interface WatchIo {
  onEvent(event: JournalEvent): void;
  /** A poll failed after the first success and will be retried; `null` when it works again. */
  onTrouble(message: string | null): void;
  /** Ctrl-C: stop, successfully. */
  signal: AbortSignal;
}

export interface WatchResult {
  seen: number;
  stoppedBy: 'count' | 'timeout' | 'interrupt';
  exitCode: ExitCode;
}

/**
 * Polls until Ctrl-C, `count` events or `timeoutMs`. Throws CliError when the first poll fails
 * (the API cannot be reached, refuses, answers nonsense) and for a refusal (4xx) at any time;
 * later network errors and 5xx are retried. Exit 0, or 1 when the timeout comes before `count`.
 */
export async function watchEvents(connect: () => Transport, opts: WatchOptions, io: WatchIo): Promise<WatchResult> {
  const api = connect();
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  io.signal.addEventListener('abort', onInterrupt, { once: true });
  if (io.signal.aborted) stop.abort();
  let timedOut = false;
  const timer =
    opts.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          stop.abort();
        }, opts.timeoutMs)
      : undefined;

  let after: string | undefined;
  let lastId = '';
  let seen = 0;
  let skipping = opts.sinceStart;
  let polled = false;
  const firstRetryMs = opts.retryMs ?? WATCH_DEFAULTS.retryMs;
  let retryMs = firstRetryMs;
  let troubled = false;
  try {
    while (!stop.signal.aborted) {
      let page: EventPage;
      try {
        page = eventPageOf(await api.send({ op: 'events', ...(after !== undefined ? { after } : {}) }, { signal: stop.signal }));
      } catch (err) {
        if (stop.signal.aborted) break;
        if (!polled || !retryable(err)) throw err;
        if (!troubled) io.onTrouble(`${(err as Error).message}; retrying`);
        troubled = true;
        await pause(retryMs, stop.signal);
        retryMs = Math.min(retryMs * 2, WATCH_DEFAULTS.maxRetryMs);
        continue;
      }
      polled = true;
      retryMs = firstRetryMs;
      if (troubled) io.onTrouble(null);
      troubled = false;
      for (const e of page.events) {
        if (e.id <= lastId) continue; // ids sort in time order; never show one twice
        lastId = e.id;
        if (skipping) continue;
        io.onEvent(e);
        seen += 1;
        if (opts.count !== undefined && seen >= opts.count) return { seen, stoppedBy: 'count', exitCode: EXIT.ok };
      }
      if (page.next !== null) after = page.next;
      if (page.more) continue;
      skipping = false; // the backlog of the first answer is behind us
      await pause(opts.intervalMs ?? WATCH_DEFAULTS.intervalMs, stop.signal);
    }
  } finally {
    clearTimeout(timer);
    io.signal.removeEventListener('abort', onInterrupt);
  }
  if (timedOut && opts.count !== undefined) {
    throw new CliError(EXIT.error, 'Timeout', `timed out after ${opts.timeoutMs! / 1000} s with ${seen} of ${opts.count} events`, { seen });
  }
  return { seen, stoppedBy: timedOut ? 'timeout' : 'interrupt', exitCode: EXIT.ok };
}

/** Network trouble and server failures pass; a refusal or a nonsense answer will not. */
function retryable(err: unknown): boolean {
  if (!(err instanceof CliError)) return false;
  return ['Network', 'BadResponse', 'Internal'].includes(err.code) || err.exitCode === EXIT.unavailable || /^Http5\d\d$/.test(err.code);
}

/** The EventPage of a 200; anything else becomes its CliError. */
export const eventPageOf = cliGuard(sharedEventPageOf);
