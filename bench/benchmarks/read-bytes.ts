/**
 * Issues 2 (a) and 11 (2): body bytes read from the stores per read, as a multiple of the file
 * size. Identical copies (equal single-part ETags) must cost 1.0× — the original design read both
 * bodies, 2.0×. When only a byte compare can tell (multipart-style ETags), each copy is read at
 * most once: 2.0× inline (the goal; 3.0× before issue 11, server1's body read again by the
 * compare), 2.0× by readFile plus the client's 1.0× by URL above the inline limit.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readFile } from '../../lib/read';
import type { ReadAnswer } from '../../lib/types';
import { benchDeps, clientOnAgent, CountingAgent, multipartEtagClient } from '../clients';
import { fmtRatio, fmtSize, KiB, MiB, type Benchmark, type Row } from '../harness';

const BUCKETS = ['rb-server1', 'rb-server2'];

interface Measured {
  /** What readFile consumed from the stores (deps.meter). */
  bodyBytes: number;
  /** What the presigned URL of the answer served, when there was one. */
  urlBytes: number;
  /** Everything the stores' sockets received, headers included. */
  wireBytes: number;
  connections: number;
  answer: ReadAnswer;
}

export const readBytes: Benchmark = {
  name: 'read-bytes',
  issue: 11,
  title: 'store body bytes per SINGLE read / file size: identical copies (goal 1.0×), equal content with multipart ETags (goal: each copy once, 2.0× inline)',
  async run({ s3, log }) {
    await s3.createBuckets(BUCKETS);
    const inlineLimit = benchDeps(s3.endpoint, BUCKETS).inlineLimit;
    const rows: Row[] = [];

    const cases: { size: number; multipart: boolean }[] = [
      { size: 64 * KiB, multipart: false },
      { size: 512 * KiB, multipart: false },
      { size: 4 * MiB, multipart: false },
      { size: 512 * KiB, multipart: true },
      { size: 4 * MiB, multipart: true },
    ];
    for (const c of cases) {
      const key = `read-bytes/${c.size}.bin`;
      const body = randomBytes(c.size);
      for (const bucket of BUCKETS) {
        await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { mtime: '1700000000000' } }));
      }
      log(`read-bytes: ${fmtSize(c.size)}${c.multipart ? ', multipart-style ETags' : ''}`);
      const m = await measure(s3.endpoint, key, c.multipart);
      if (m.answer.status !== 'SINGLE') throw new Error(`read-bytes: ${key} answered ${m.answer.status}, not SINGLE`);
      const content = m.answer.content;
      if (content && 'base64' in content && !Buffer.from(content.base64, 'base64').equals(body)) {
        throw new Error(`read-bytes: ${key} came back with other bytes`);
      }
      const total = (m.bodyBytes + m.urlBytes) / c.size;
      const inline = c.size <= inlineLimit;
      const how = inline ? 'inline' : 'by URL';
      const wire = `the sockets received ${(m.wireBytes / c.size).toFixed(2)}× (headers included) over ${m.connections} new connection(s)`;
      const value = `${(m.bodyBytes / c.size).toFixed(2)}× in readFile${inline ? '' : ` + ${(m.urlBytes / c.size).toFixed(2)}× by URL`}`;
      if (!c.multipart) {
        rows.push({
          bench: 'read-bytes',
          metric: `body bytes / size, ${fmtSize(c.size)} ${how}, equal ETags`,
          value,
          ratio: total,
          goal: '≤ 1.0×',
          verdict: total <= 1 ? 'pass' : 'miss',
          note: inline
            ? `${m.bodyBytes} B read for a ${c.size} B file; ${wire}`
            : `over the ${fmtSize(inlineLimit)} inline limit the answer carries a presigned URL and readFile consumes 0 B; its speculative GET is destroyed after the headers, yet the socket had already received ${m.wireBytes} B (${(m.wireBytes / c.size).toFixed(2)}×) and is closed rather than reused (${m.connections} new connection(s))`,
        });
      } else {
        // Both copies must be read once to compare them; above the inline limit the client then downloads one.
        const floor = inline ? 2 : 3;
        rows.push({
          bench: 'read-bytes',
          metric: `body bytes / size, ${fmtSize(c.size)} ${how}, equal content, multipart ETags`,
          value,
          ratio: total,
          goal: `≤ ${floor.toFixed(1)}× (each copy once)`,
          verdict: total <= floor ? 'pass' : 'miss',
          note:
            (inline
              ? `the speculative GET keeps server1's body (1.0×) and server2's copy is read whole once (1.0×) and compared against it`
              : `the speculative GET is dropped after its headers; the byte compare streams both copies side by side (2.0×), then the client downloads one by URL (1.0×)`) + `; ${wire}`,
        });
      }
    }
    return rows;
  },
};

async function measure(endpoint: string, key: string, multipart: boolean): Promise<Measured> {
  const agent = new CountingAgent();
  const deps = benchDeps(endpoint, BUCKETS);
  deps.stores = deps.stores.map((s, i) => ({
    ...s,
    s3: multipart ? multipartEtagClient(endpoint, i + 2, agent) : clientOnAgent(endpoint, agent),
  }));
  try {
    const answer = await readFile(deps, key);
    const wireBytes = agent.bytesRead();
    const connections = agent.connections;
    let urlBytes = 0;
    const content = answer.status === 'SINGLE' ? answer.content : undefined;
    if (content && 'url' in content) {
      const res = await fetch(content.url);
      if (!res.ok) throw new Error(`read-bytes: the presigned URL answered ${res.status}`);
      urlBytes = (await res.arrayBuffer()).byteLength;
    }
    return { bodyBytes: deps.meter.bodyBytes, urlBytes, wireBytes, connections, answer };
  } finally {
    for (const s of deps.stores) s.s3.destroy();
    agent.destroy();
  }
}
