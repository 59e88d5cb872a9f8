/** Upload: a file picker and a drop zone, to every store or one, each file with its progress. */
import { useRef, useState } from 'preact/hooks';
import { usePage } from '../context';
import { formatSize } from '../format';
import { uploadFile } from '../ops';
import { errorWords, outcomeWords } from '../words';

interface Job {
  id: number;
  name: string;
  size: number;
  to: string;
  fraction: number;
  state: 'waiting' | 'sending' | 'done' | 'failed';
  words?: string;
  stop: AbortController;
}

export function Uploads({ stores }: { stores: string[] }) {
  const { api, report, reload } = usePage();
  const [to, setTo] = useState('all');
  const [jobs, setJobs] = useState<Job[]>([]);
  const [over, setOver] = useState(false);
  const seq = useRef(0);
  // Files go one after another: each gets the whole link, and the list reads in order.
  const queue = useRef(Promise.resolve());

  const update = (id: number, change: Partial<Job>) => setJobs((all) => all.map((j) => (j.id === id ? { ...j, ...change } : j)));

  const add = (files: FileList | File[] | null) => {
    for (const file of Array.from(files ?? [])) {
      const job: Job = { id: ++seq.current, name: file.name, size: file.size, to, fraction: 0, state: 'waiting', stop: new AbortController() };
      setJobs((all) => [job, ...all].slice(0, 20));
      queue.current = queue.current.then(async () => {
        if (job.stop.signal.aborted) return update(job.id, { state: 'failed', words: 'cancelled' });
        update(job.id, { state: 'sending' });
        try {
          const results = await uploadFile(api, file, file.name, job.to, (fraction) => update(job.id, { fraction }), job.stop.signal);
          const words = outcomeWords(results);
          update(job.id, { state: words.ok ? 'done' : 'failed', fraction: 1, words: words.text });
        } catch (err) {
          update(job.id, { state: 'failed', words: errorWords(err) });
          report(err, `Uploading ${file.name}`);
        }
        reload();
      });
    }
  };

  return (
    <section aria-labelledby="upload-h">
      <h2 id="upload-h">Upload</h2>
      <div
        class={over ? 'drop over' : 'drop'}
        onDragOver={(e) => (e.preventDefault(), setOver(true))}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          add(e.dataTransfer?.files ?? null);
        }}
      >
        <label for="upload-files">Choose files</label>
        <input id="upload-files" type="file" multiple onChange={(e) => {
          const input = e.target as HTMLInputElement;
          add(input.files);
          input.value = '';
        }} />
        <span>or drop them here.</span>
        <label for="upload-to">Upload to</label>
        <select id="upload-to" value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)}>
          <option value="all">every store</option>
          {stores.map((s) => <option key={s} value={s}>{s} (replication copies it on)</option>)}
        </select>
      </div>
      <ul class="jobs" aria-live="polite">
        {jobs.map((j) => (
          <li key={j.id} class={`job ${j.state}`} data-name={j.name}>
            <span class="job-name">{j.name}</span> <span class="muted">{formatSize(j.size)} → {j.to === 'all' ? 'every store' : j.to}</span>
            <progress max={1} value={j.fraction} aria-label={`Upload of ${j.name}`} />
            <span class="job-state">{j.state === 'sending' ? `${Math.round(j.fraction * 100)}%` : j.state === 'waiting' ? 'waiting' : j.words}</span>
            {j.state === 'sending' || j.state === 'waiting' ? (
              <button type="button" onClick={() => j.stop.abort()} aria-label={`Cancel the upload of ${j.name}`}>Cancel</button>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
