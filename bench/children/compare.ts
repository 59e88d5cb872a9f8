/**
 * One streamed byte compare of two equal copies, alone in a fresh process so that its peak
 * RSS is its own: `readFile(…, { meta: true })` on copies whose ETags are multipart-style and
 * different (see multipartEtagClient), so HEAD fields cannot decide and lib/compare's ranged
 * compareBytes reads both copies through, with the default 8 MiB chunks.
 *
 * usage: compare.js ENDPOINT BUCKET1 BUCKET2 KEY SIZE   →  IPC { result: CompareRun }
 */
import { readFile } from '../../lib/read';
import { benchDeps, multipartEtagClient } from '../clients';
import { answer } from './ipc';
import { sampleRss, type RssReport } from './rss';

export interface CompareRun {
  ms: number;
  bodyBytes: number;
  compareChunkBytes: number;
  rss: RssReport;
}

answer(async (): Promise<CompareRun> => {
  const [endpoint, bucket1, bucket2, key, size] = process.argv.slice(2);
  if (!endpoint || !bucket1 || !bucket2 || !key || !size) throw new Error('usage: compare.js ENDPOINT BUCKET1 BUCKET2 KEY SIZE');
  const deps = benchDeps(endpoint, [bucket1, bucket2]);
  deps.stores = deps.stores.map((s, i) => ({ ...s, s3: multipartEtagClient(endpoint, i + 2) }));
  const rss = sampleRss();
  const t0 = process.hrtime.bigint();
  const a = await readFile(deps, key, { meta: true });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const report = rss.stop();
  if (a.status !== 'SINGLE' || a.copies.length !== 2 || a.copies[0]!.size !== Number(size)) {
    throw new Error(`expected SINGLE with 2 copies of ${size} B, got ${JSON.stringify(a)}`);
  }
  if (!a.copies[0]!.etag.includes('-')) throw new Error('the ETags were not made multipart-style');
  return { ms, bodyBytes: deps.meter.bodyBytes, compareChunkBytes: deps.compareChunkBytes, rss: report };
});
