/**
 * One byte compare of two equal copies, alone in a fresh process so that its peak RSS is its
 * own, on copies whose ETags are multipart-style and different (see multipartEtagClient), so
 * HEAD fields cannot decide:
 *   stream  `readFile(…, { meta: true })`: lib/compare's streamed compare, one GET per copy;
 *   ranged  the same HEADs, then lib/compare's compareRanges (chunked ranged GETs), the way
 *           it compared before the streamed compare, kept to measure where either wins.
 *
 * usage: compare.js ENDPOINT BUCKET1 BUCKET2 KEY SIZE [stream|ranged]   →  IPC { result: CompareRun }
 */
import { compareRanges } from '../ranged';
import { readFile } from '../../lib/read';
import { headObject } from '../../lib/stores';
import { benchDeps, multipartEtagClient } from '../clients';
import { answer } from './ipc';
import { sampleRss, type RssReport } from './rss';

export interface CompareRun {
  ms: number;
  bodyBytes: number;
  compareChunkBytes: number;
  rss: RssReport;
  /** CPU time of this process during the compare, user + system, ms. */
  cpuMs: number;
}

answer(async (): Promise<CompareRun> => {
  const [endpoint, bucket1, bucket2, key, size, mode = 'stream'] = process.argv.slice(2);
  if (!endpoint || !bucket1 || !bucket2 || !key || !size || !['stream', 'ranged'].includes(mode)) {
    throw new Error('usage: compare.js ENDPOINT BUCKET1 BUCKET2 KEY SIZE [stream|ranged]');
  }
  const deps = benchDeps(endpoint, [bucket1, bucket2]);
  deps.stores = deps.stores.map((s, i) => ({ ...s, s3: multipartEtagClient(endpoint, i + 2) }));
  const rss = sampleRss();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let same: boolean;
  let etag: string;
  if (mode === 'stream') {
    const a = await readFile(deps, key, { meta: true });
    same = a.status === 'SINGLE' && a.copies.length === 2 && a.copies[0]!.size === Number(size);
    etag = a.status === 'SINGLE' ? a.copies[0]!.etag : '';
  } else {
    const [h1, h2] = await Promise.all(deps.stores.map((s) => headObject(s, key)));
    same = (await compareRanges(deps, key, h1!, h2!)).same && h1!.size === Number(size);
    etag = h1!.etag;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const report = rss.stop();
  if (!same) throw new Error(`expected 2 equal copies of ${size} B (${mode})`);
  if (!etag.includes('-')) throw new Error('the ETags were not made multipart-style');
  return { ms, bodyBytes: deps.meter.bodyBytes, compareChunkBytes: deps.compareChunkBytes, rss: report, cpuMs: (cpu.user + cpu.system) / 1000 };
});
