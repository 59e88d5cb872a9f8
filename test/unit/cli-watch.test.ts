import type { Transport } from '../../cli/client';
import { CliError } from '../../cli/exit';
import { eventPageOf, watchEvents } from '../../cli/watch';
import type { JournalEvent } from '../../lib/types';

const ev = (n: number): JournalEvent => ({ id: `00000000000000${n}-0000000${n}`, time: '2024-05-01T10:00:00.000Z', action: 'replicate', key: `k${n}` });
const network = () => new CliError(1, 'Network', 'cannot reach the API');

/** A transport answering from a script of pages or errors, one per call. */
function scripted(steps: Array<{ events: JournalEvent[]; more?: boolean } | Error>) {
  const afters: (string | undefined)[] = [];
  let i = 0;
  const api: Transport = {
    async send(op) {
      if (op.op !== 'events') throw new Error('unexpected');
      afters.push(op.after);
      const step = steps[Math.min(i++, steps.length - 1)]!;
      if (step instanceof Error) throw step;
      return { status: 200, body: { events: step.events, next: step.events.at(-1)?.id ?? op.after ?? null, more: step.more ?? false } };
    },
  };
  return { api, afters };
}

describe('watchEvents', () => {
  it('retries network failures after the first success, saying so once and when it works again', async () => {
    const { api, afters } = scripted([{ events: [ev(1)] }, network(), network(), { events: [ev(2)] }]);
    const seen: string[] = [];
    const trouble: (string | null)[] = [];
    const r = await watchEvents(() => api, { sinceStart: false, count: 2, intervalMs: 0, retryMs: 1 }, {
      onEvent: (e) => seen.push(e.key),
      onTrouble: (m) => trouble.push(m),
      signal: new AbortController().signal,
    });
    expect(r).toEqual({ seen: 2, stoppedBy: 'count', exitCode: 0 });
    expect(seen).toEqual(['k1', 'k2']);
    expect(trouble).toEqual(['cannot reach the API; retrying', null]);
    expect(afters).toEqual([undefined, ev(1).id, ev(1).id, ev(1).id]);
  });

  it('fails at once when the first poll fails', async () => {
    const { api } = scripted([network()]);
    await expect(watchEvents(() => api, { sinceStart: false }, { onEvent: () => {}, onTrouble: () => {}, signal: new AbortController().signal })).rejects.toMatchObject({ code: 'Network' });
  });

  it('stops successfully when interrupted', async () => {
    const ctrl = new AbortController();
    const { api } = scripted([{ events: [ev(1)] }, { events: [] }]);
    const r = await watchEvents(() => api, { sinceStart: false, intervalMs: 5 }, { onEvent: () => ctrl.abort(), onTrouble: () => {}, signal: ctrl.signal });
    expect(r).toEqual({ seen: 1, stoppedBy: 'interrupt', exitCode: 0 });
  });
});

describe('eventPageOf', () => {
  it('refuses pages and events that are not what GET /events answers', () => {
    expect(() => eventPageOf({ status: 200, body: { events: 'x', next: null } })).toThrow(expect.objectContaining({ code: 'BadResponse' }));
    expect(() => eventPageOf({ status: 200, body: { events: [{ id: 'a' }], next: null } })).toThrow(expect.objectContaining({ code: 'BadResponse' }));
    expect(eventPageOf({ status: 200, body: { events: [], next: null } })).toEqual({ events: [], next: null, more: false });
  });
});
