/** Sync: a dry run shown as a table of steps with their reasons, then applied in batches with progress. */
import { useState } from 'preact/hooks';
import type { SyncReport } from '../../client/answers';
import { usePage } from '../context';
import { applySync, previewSync } from '../ops';
import { busy } from './dialog';

export function SyncPanel() {
  const { api, report, note, reload } = usePage();
  const [plan, setPlan] = useState<SyncReport>();
  const [done, setDone] = useState<number>();
  const [working, setWorking] = useState(false);

  const preview = () =>
    busy(setWorking, async () => {
      setDone(undefined);
      try {
        setPlan(await previewSync(api));
      } catch (err) {
        report(err, 'Comparing the stores');
      }
    });

  const apply = (p: SyncReport) =>
    busy(setWorking, async () => {
      try {
        setDone(0);
        const out = await applySync(api, p.entries, setDone);
        if (out.failed.length) report(new Error(out.failed.map((f) => `${f.key}: ${f.error}`).join('; ')), 'Sync');
        else note(`Sync applied: ${out.done} step${out.done === 1 ? '' : 's'}.`);
        setPlan(undefined);
        reload();
      } catch (err) {
        report(err, 'Applying the sync');
      }
    });

  const c = plan?.counts;
  return (
    <section aria-labelledby="sync-h">
      <h2 id="sync-h">Sync</h2>
      <p>
        <button type="button" disabled={working} onClick={preview}>Preview sync</button>{' '}
        {plan && plan.entries.length > 0 ? <button type="button" disabled={working} onClick={() => apply(plan)}>Apply {plan.entries.length} step{plan.entries.length === 1 ? '' : 's'}</button> : null}
      </p>
      {done !== undefined && plan ? <progress max={plan.entries.length} value={done} aria-label="Sync progress" /> : null}
      {plan && c ? (
        <>
          <p class="summary" aria-live="polite">
            {c.match} equal, {c.differ} different, {Object.entries(c.missing).map(([s, n]) => `${n} missing on ${s}`).join(', ') || 'none missing'}: {c.copies} copies and {c.deletes} deletes to make.
            {plan.unavailable.length ? ` Not compared: ${plan.unavailable.join(', ')} did not answer.` : ''}
          </p>
          {plan.entries.length ? (
            <div class="scroll">
              <table class="plan">
                <caption class="sr-only">What the sync would do</caption>
                <thead><tr><th scope="col">Name</th><th scope="col">Action</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Why</th></tr></thead>
                <tbody>
                  {plan.entries.map((e) => (
                    <tr key={e.key}>
                      <th scope="row" data-label="Name">{e.key}</th>
                      <td data-label="Action">{e.action}</td>
                      <td data-label="From">{e.action === 'copy' ? e.from : e.from.join(', ')}</td>
                      <td data-label="To">{e.action === 'copy' ? e.to.join(', ') : '—'}</td>
                      <td data-label="Why">{e.reason}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : <p>The stores agree: nothing to do.</p>}
        </>
      ) : null}
    </section>
  );
}
