/** The live journal: what the servers do, newest first, polled every two seconds. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JournalEvent } from '../../client/answers';
import { pause } from '../../client/pause';
import { usePage } from '../context';
import { formatTime } from '../format';
import { readEvents } from '../ops';

const POLL_MS = 2000;
const KEEP = 100;

export function Feed({ onEvents }: { onEvents: () => void }) {
  const { api, report } = usePage();
  const [events, setEvents] = useState<JournalEvent[]>([]);
  const [trouble, setTrouble] = useState<string>();
  const changed = useRef(onEvents);
  changed.current = onEvents;

  useEffect(() => {
    const stop = new AbortController();
    void (async () => {
      let after: string | undefined;
      let first = true;
      while (!stop.signal.aborted) {
        try {
          const page = await readEvents(api, after, stop.signal);
          after = page.next ?? after;
          if (page.events.length) {
            setEvents((old) => [...page.events.reverse(), ...old].slice(0, KEEP));
            if (!first) changed.current();
          }
          setTrouble(undefined);
          first = false;
          if (page.more) continue;
        } catch (err) {
          if (stop.signal.aborted) return;
          // The first failure is reported; later ones keep polling (the stack may come back).
          if (first) return report(err, 'Reading the live events');
          setTrouble('The live feed lost the server; trying again.');
        }
        await pause(POLL_MS, stop.signal);
      }
    })();
    return () => stop.abort();
  }, [api]);

  return (
    <section aria-labelledby="feed-h">
      <h2 id="feed-h">Live events</h2>
      {trouble ? <p class="notice error">{trouble}</p> : null}
      <div role="log" aria-live="polite" aria-labelledby="feed-h">
      <ol class="feed">
        {events.map((e) => (
          <li key={e.id} data-action={e.action}>
            <time dateTime={e.time}>{formatTime(e.time).slice(11)}</time> <strong>{e.action}</strong> {e.key}
            {e.who ? <span class="muted"> by {e.who}</span> : null}
            {e.from ? <span class="muted"> {e.from}{e.to?.length ? ` → ${e.to.join(', ')}` : ''}</span> : null}
            {e.reason ? <span class="muted"> · {e.reason}</span> : null}
          </li>
        ))}
        {events.length === 0 ? <li class="muted">Nothing in the last minute yet.</li> : null}
      </ol>
      </div>
    </section>
  );
}
