import { randomBytes } from 'node:crypto';
import type { Deps } from './deps';
import { BadRequestError } from './errors';
import { createRecord, listRecords, readRecord } from './control';
import type { JournalEvent, EventPage } from './types';

/*
 * The journal is one small object per event in the control bucket, named
 * `journal/<ms since 1970, 15 digits>-<random>` so that S3's sorted listing is the event order.
 *
 * Writers in different Lambdas can land slightly out of order: an event stamped 12:00:00.900
 * may be written just after one stamped 12:00:01.000. A reader that had already passed the
 * later id would never see the earlier one. So readers only get events older than SETTLE_MS:
 * an event is missed only if its write took longer than that, and `dfs watch` still shows
 * each event within a second.
 */
const PREFIX = 'journal/';
export const SETTLE_MS = 400;
const PAGE = 200;

export type NewEvent = Omit<JournalEvent, 'id' | 'time'> & { time?: number };

const idFor = (time: number) => `${String(time).padStart(15, '0')}-${randomBytes(4).toString('hex')}`;

/** Appends one event; the returned id orders it among all others. */
export async function appendEvent(deps: Pick<Deps, 'control'>, event: NewEvent): Promise<JournalEvent> {
  const time = event.time ?? Date.now();
  const full: JournalEvent = { ...event, id: idFor(time), time: new Date(time).toISOString() };
  await createRecord(deps.control, PREFIX + full.id, full);
  return full;
}

/**
 * Events after `after` (an id from a previous page; absent = the last minute), oldest first,
 * at most PAGE per call, none younger than SETTLE_MS (see above). `next` is the id to pass
 * back; it never moves backwards.
 */
export async function readEvents(deps: Pick<Deps, 'control'>, after?: string, now = Date.now()): Promise<EventPage> {
  if (after && !/^\d{15}-[0-9a-f]{8}$/.test(after)) throw new BadRequestError('"after" must be an event id from a previous answer');
  const start = after || String(now - 60_000).padStart(15, '0');
  const listed: string[] = [];
  for await (const r of listRecords(deps.control, PREFIX, { startAfter: PREFIX + start, max: PAGE })) listed.push(r.key);
  const settled = String(now - SETTLE_MS).padStart(15, '0');
  const keys = listed.filter((k) => k.slice(PREFIX.length, PREFIX.length + 15) <= settled);
  const events = (await Promise.all(keys.map((k) => readRecord<JournalEvent>(deps.control, k)))).flatMap((r) => (r ? [r.value] : []));
  const next = events[events.length - 1]?.id ?? (after || null);
  return { events, next, more: keys.length === PAGE };
}
