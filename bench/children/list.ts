/**
 * The whole composite listing, page by page through lib/listing listFiles (pages of 1000, as
 * GET /files serves them), alone in a fresh process so that its peak RSS is its own. Nothing
 * is kept between pages but the cursor and a count.
 *
 * usage: list.js ENDPOINT BUCKET1 BUCKET2   →  IPC { result: ListRun }
 */
import { listFiles } from '../../lib/listing';
import { benchDeps } from '../clients';
import { answer } from './ipc';
import { sampleRss, type RssReport } from './rss';

export interface ListRun {
  ms: number;
  names: number;
  pages: number;
  rss: RssReport;
}

answer(async (): Promise<ListRun> => {
  const [endpoint, bucket1, bucket2] = process.argv.slice(2);
  if (!endpoint || !bucket1 || !bucket2) throw new Error('usage: list.js ENDPOINT BUCKET1 BUCKET2');
  const deps = benchDeps(endpoint, [bucket1, bucket2]);
  const rss = sampleRss();
  const t0 = process.hrtime.bigint();
  let after: string | undefined;
  let names = 0;
  let pages = 0;
  do {
    const page = await listFiles(deps, after ? { after } : {});
    names += page.files.length;
    pages++;
    after = page.next ?? undefined;
  } while (after);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, names, pages, rss: rss.stop() };
});
