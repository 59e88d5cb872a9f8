/**
 * Issue 10: the web page on the local stack, in Debian's headless Chromium (playwright-core
 * drives /usr/bin/chromium; no browser is ever downloaded).
 *
 * - Page weight: the JS and CSS that GET / names, as the API serves them gzipped (the bytes on
 *   the wire, KB = 1000 B), against the issue's 60 KB.
 * - First contentful paint (Performance API) and the time to an interactive listing of
 *   BENCH_KEYS files per store (the bench dataset: mostly same, 1 % different, 2 % partial):
 *   from navigation start until every page of the listing is in (the count drops its
 *   "loading…") and a filter typed into the filter box has answered (the count reads "1 of N
 *   files" and the filtered row, the listing's last name, is in the DOM). Measured inside the
 *   page (a MutationObserver, times on the page's own clock) in a fresh browser context each run,
 *   so the HTTP cache is cold. The peer figure is `dfs ls --json` of the same listing through the
 *   same stack, spawn to exit; goal '-' as the issue sets none.
 * - Upload: a 256 MiB file (BENCH_BIG_MIB when smaller) set on the page's file picker, to every
 *   store, until its job reads stored; against `dfs put --to all` of the same file. Both go
 *   through client/multipart.ts; goal ≤ 1.0× (the page no slower than the CLI, as both do the
 *   same requests). Each copy is checked on both buckets, then removed.
 */
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createWriteStream, existsSync, linkSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { missingCli, runDfsRetried, trialDfs } from '../cli';
import { keyOf, loadDataset, type Dataset } from '../datasets';
import { atMost, fmtCount, fmtMs, fmtSize, median, MiB, nowMs, skipped, type BenchContext, type Benchmark, type Row } from '../harness';
import { contentStream, newSeed } from '../s3';
import { missingStack, startBenchStack, type BenchStack } from '../stack';

const CHROMIUM = process.env.DFS_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const WEIGHT_GOAL_KB = 60;
const UPLOAD_GOAL = 1.0;
const UPLOAD_MIB = 256;
const TOKEN_KEY = 's3-dfs.token'; // web/api.ts
const LISTING_TIMEOUT_MS = 300_000;
const UPLOAD_TIMEOUT_MS = 900_000;

export const web: Benchmark = {
  name: 'web',
  issue: 10,
  peers: ['time'],
  title: `the web page: weight (JS + CSS gzip, goal ≤ ${WEIGHT_GOAL_KB} KB), first paint and an interactive 10k listing / \`dfs ls --json\`, a 256 MiB upload / \`dfs put --to all\` (goal ≤ ${UPLOAD_GOAL}×)`,
  async run(ctx) {
    const { sizes, log } = ctx;
    const names = fmtCount(sizes.keys);
    const uploadBytes = Math.min(UPLOAD_MIB, sizes.bigMiB) * MiB;
    const m = {
      weight: 'page weight, JS + CSS gzipped as GET / serves them',
      fcp: `first contentful paint, ${names} files per store (cold cache)`,
      firstRows: `first rows of the listing in the DOM, ${names} files per store`,
      tti: `time to an interactive listing (page) / \`dfs ls --json\`, ${names} files per store`,
      upload: `upload of ${fmtSize(uploadBytes)} from the page / \`dfs put --to all\`, to both stores`,
    };
    const pageSkips = (why: string): Row[] => [
      skipped('web', m.fcp, '-', why),
      skipped('web', m.firstRows, '-', why),
      skipped('web', m.tti, '-', why),
      skipped('web', m.upload, `≤ ${UPLOAD_GOAL.toFixed(1)}×`, why),
    ];
    const noStack = missingStack();
    if (noStack) return [skipped('web', m.weight, `≤ ${WEIGHT_GOAL_KB} KB`, noStack), ...pageSkips(noStack)];

    const dir = mkdtempSync(join(tmpdir(), 's3-dfs-bench-web-'));
    let stack: BenchStack | undefined;
    let browser: Browser | undefined;
    try {
      let dataset: Dataset | undefined;
      log(`web: starting the local stack with ${names} keys per store`);
      stack = await startBenchStack(async (s3, buckets) => {
        dataset = await loadDataset(s3.client, buckets, sizes.keys, log);
      });
      const rows: Row[] = [await pageWeight(stack)];

      const launched = await launch();
      if (typeof launched === 'string') return [...rows, ...pageSkips(launched)];
      browser = launched;

      const noLs = await missingCli('ls', ['--json']);
      rows.push(...(noLs ? pageSkips(noLs).slice(0, 3) : await listing(ctx, stack, browser, dataset!, m)));
      const noPut = await missingCli('put', ['--to']);
      rows.push(noPut ? skipped('web', m.upload, `≤ ${UPLOAD_GOAL.toFixed(1)}×`, noPut) : await upload(ctx, stack, browser, dir, uploadBytes, m.upload));
      return rows;
    } finally {
      await (browser as Browser | undefined)?.close().catch(() => undefined);
      await stack?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** Chromium from Debian, or why it cannot be used (a sentence, not a stack trace). */
async function launch(): Promise<Browser | string> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (apt-get install -y chromium; no browser is downloaded)`;
  try {
    return await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 60_000 });
  } catch (err) {
    return `${CHROMIUM} did not start: ${(err as Error).message.split('\n')[0]!.slice(0, 300)}`;
  }
}

/** The raw bytes of a GET, gzip accepted and not undone: what goes over the wire. */
function getRaw(url: URL): Promise<{ status: number; encoding: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, encoding: String(res.headers['content-encoding'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function pageWeight(stack: BenchStack): Promise<Row> {
  const base = new URL(`${stack.apiUrl.replace(/\/$/, '')}/`);
  const index = await getRaw(base);
  if (index.status !== 200) throw new Error(`web: GET / answered ${index.status}`);
  const html = (index.encoding === 'gzip' ? (await import('node:zlib')).gunzipSync(index.body) : index.body).toString('utf8');
  const assets = [...html.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((x) => x[1]!);
  if (!assets.some((a) => a.endsWith('.js')) || !assets.some((a) => a.endsWith('.css'))) throw new Error(`web: GET / names no JS and CSS asset (${assets.join(', ') || 'none'})`);
  const parts: string[] = [];
  let total = 0;
  for (const a of assets) {
    const got = await getRaw(new URL(a, base));
    if (got.status !== 200) throw new Error(`web: GET ${a} answered ${got.status}`);
    if (got.encoding !== 'gzip') throw new Error(`web: GET ${a} was not gzipped (content-encoding "${got.encoding}")`);
    total += got.body.length;
    parts.push(`${a.replace(/^.*\//, '')} ${(got.body.length / 1000).toFixed(1)} KB`);
  }
  const kb = total / 1000;
  return {
    bench: 'web',
    metric: 'page weight, JS + CSS gzipped as GET / serves them',
    value: `${kb.toFixed(1)} KB`,
    goal: `≤ ${WEIGHT_GOAL_KB} KB`,
    verdict: atMost(kb, WEIGHT_GOAL_KB),
    note: `${parts.join(', ')} (bytes on the wire with accept-encoding: gzip, KB = 1000 B); index.html ${(index.body.length / 1000).toFixed(1)} KB${index.encoding === 'gzip' ? ' gzipped' : ''}, not counted`,
  };
}

/** A fresh context (cold cache) that is signed in before the page's scripts run. */
async function signedContext(browser: Browser, token: string, extra = ''): Promise<{ context: BrowserContext; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Only in the page itself: the new tab's about:blank has no sessionStorage to write.
  await context.addInitScript({ content: `if (location.protocol === 'http:') {\nperformance.setResourceTimingBufferSize(2000);\nsessionStorage.setItem(${JSON.stringify(TOKEN_KEY)}, ${JSON.stringify(token)});\n${extra}\n}` });
  const problems: string[] = [];
  context.on('page', (p) => {
    p.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    p.on('console', (msg) => {
      // A failed request is said with its address below instead.
      if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text().slice(0, 200)}`);
    });
    p.on('response', (res) => {
      if (res.status() >= 400 && !/\/favicon\.ico$/.test(new URL(res.url()).pathname)) problems.push(`${res.request().method()} ${new URL(res.url()).pathname} answered ${res.status()}`);
    });
  });
  return { context, problems };
}

/**
 * Runs in the page before its own scripts: notes (performance.now(), from navigation start) when
 * the first row is in the DOM and when the listing is whole, then types `filter` into the filter
 * box at once and notes when the count reads "1 of N files" with row `last` shown.
 */
const listingProbe = (filter: string, last: string) => `
(() => {
  const b = (window.__bench = { firstRow: null, complete: null, filtered: null, total: null });
  const check = () => {
    const now = performance.now();
    if (b.firstRow === null && document.querySelector('tr[data-name]')) b.firstRow = now;
    const count = document.querySelector('.toolbar .count');
    if (!count) return;
    const text = (count.textContent || '').trim();
    if (b.complete === null) {
      const whole = /^(\\d+) files/.exec(text);
      if (!whole) return;
      b.complete = now;
      b.total = Number(whole[1]);
      const input = document.getElementById('filter');
      input.value = ${JSON.stringify(filter)};
      input.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertText', data: input.value }));
    } else if (b.filtered === null && /^1 of \\d+ files/.test(text) && document.querySelector('tr[data-name=' + JSON.stringify(${JSON.stringify(last)}) + ']')) {
      b.filtered = now;
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(check);
  document.addEventListener('DOMContentLoaded', () => {
    observer.observe(document.body, { childList: true, subtree: true, characterData: true });
    check();
  });
})();`;

interface PageLoad {
  fcp: number | null;
  firstRow: number;
  complete: number;
  filtered: number;
  total: number;
  /** The listing's GET /files requests: how many, when the first was sent, their time in all (they go one after another). */
  lists: { n: number; first: number; busy: number };
}

async function loadListingPage(browser: Browser, stack: BenchStack, d: Dataset): Promise<PageLoad & { problems: string[] }> {
  const last = keyOf(d.keys - 1);
  const filter = last.slice(last.lastIndexOf('/') + 1); // f0009999.txt: one name
  const { context, problems } = await signedContext(browser, stack.token, listingProbe(filter, last));
  try {
    const page = await context.newPage();
    await page.goto(`${stack.apiUrl.replace(/\/$/, '')}/`, { timeout: LISTING_TIMEOUT_MS });
    // Functions, not strings: a string predicate is eval'd in the page, which its policy forbids. Page globals through globalThis (no DOM types here).
    await page.waitForFunction(() => (globalThis as any).__bench?.filtered != null, undefined, { timeout: LISTING_TIMEOUT_MS, polling: 100 });
    const got = (await page.evaluate(() => {
      const g = globalThis as any;
      const lists = (g.performance.getEntriesByType('resource') as { name: string; startTime: number; responseEnd: number }[]).filter((e) => /\/files\?(.*&)?limit=/.test(e.name));
      return {
        ...g.__bench,
        fcp: g.performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null,
        lists: { n: lists.length, first: lists[0]?.startTime ?? 0, busy: lists.reduce((t, e) => t + e.responseEnd - e.startTime, 0) },
      };
    })) as PageLoad;
    if (got.total !== d.keys) throw new Error(`web: the page listed ${got.total} files, expected ${d.keys}`);
    return { ...got, problems };
  } finally {
    await context.close();
  }
}

async function dfsLs(stack: BenchStack, d: Dataset, notes: string[]): Promise<number> {
  const { run, failedOnce } = await runDfsRetried(['ls', '--json', '--endpoint', stack.apiUrl], { env: { ...process.env, DFS_TOKEN: stack.token } });
  if (failedOnce) notes.push(`a dfs ls failed once and was retried: ${failedOnce}`);
  let listed: number | undefined;
  try {
    const json = JSON.parse(run.stdout) as { files?: unknown[]; count?: number };
    listed = Array.isArray(json.files) ? json.files.length : json.count;
  } catch {
    // not JSON: said below
  }
  if (listed !== d.keys) throw new Error(`web: dfs ls --json listed ${listed ?? 'no JSON'} files, expected ${d.keys}`);
  return run.ms;
}

const samples = (label: string, values: number[]) => `${label} ${values.map((v) => (v >= 10_000 ? (v / 1000).toFixed(1) : (v / 1000).toFixed(2))).join(' / ')} s`;

async function listing({ sizes, log }: BenchContext, stack: BenchStack, browser: Browser, d: Dataset, m: Record<string, string>): Promise<Row[]> {
  const broken = await trialDfs(['ls', '--json', '--endpoint', stack.apiUrl], { env: { ...process.env, DFS_TOKEN: stack.token } });
  if (broken) return [skipped('web', m.fcp!, '-', broken), skipped('web', m.firstRows!, '-', broken), skipped('web', m.tti!, '-', broken)];
  const notes: string[] = [];
  const problems = new Set<string>();
  // Warm-up (not counted): the api function's first start in sls offline, s3rver's folders into the page cache.
  log('web: listing warm-up');
  (await loadListingPage(browser, stack, d)).problems.forEach((p) => problems.add(p));
  await dfsLs(stack, d, notes);
  const loads: PageLoad[] = [];
  const ls: number[] = [];
  for (let r = 0; r < sizes.runs; r++) {
    log(`web: listing run ${r + 1}/${sizes.runs}`);
    const got = await loadListingPage(browser, stack, d);
    got.problems.forEach((p) => problems.add(p));
    loads.push(got);
    ls.push(await dfsLs(stack, d, notes));
  }
  const fcps = loads.flatMap((l) => (l.fcp === null ? [] : [l.fcp]));
  const tti = loads.map((l) => l.filtered);
  const filterMs = loads.map((l) => l.filtered - l.complete);
  const ratio = median(tti) / median(ls);
  const seen = [...problems].slice(0, 3);
  return [
    fcps.length
      ? { bench: 'web', metric: m.fcp!, value: fmtMs(median(fcps)), goal: '-', verdict: 'info', note: `median of ${fcps.length} (${samples('page', fcps)}), from navigation start, a fresh browser context each run` }
      : skipped('web', m.fcp!, '-', 'Chromium reported no first-contentful-paint entry'),
    {
      bench: 'web',
      metric: m.firstRows!,
      value: fmtMs(median(loads.map((l) => l.firstRow))),
      goal: '-',
      verdict: 'info',
      note: `median of ${loads.length} (${samples('page', loads.map((l) => l.firstRow))}), from navigation start: after the first listing page of 1000 names`,
    },
    {
      bench: 'web',
      metric: m.tti!,
      value: fmtMs(median(tti)),
      peer: fmtMs(median(ls)),
      ratio,
      goal: '-',
      verdict: 'info',
      note: [
        `median of ${sizes.runs} (${samples('page', tti)}; ${samples('dfs ls', ls)}); page: navigation start until every listing page is in and a filter typed then shows 1 of ${d.keys} files (times inside the page; the listing whole at ${samples('', loads.map((l) => l.complete)).trim()}, the filter's answer ${filterMs.map((x) => x.toFixed(0)).join(' / ')} ms after it was typed); of which the ${loads[0]!.lists.n} listing requests (one after another) ${samples('', loads.map((l) => l.lists.busy)).trim()}, the first sent at ${samples('', loads.map((l) => l.lists.first)).trim()}; dfs: spawn to exit, through the same API`,
        ...notes,
        ...(seen.length ? [`the page reported: ${seen.join('; ')}`] : []),
      ].join('; '),
    },
  ];
}

async function expectCopies(stack: BenchStack, key: string, size: number): Promise<void> {
  for (const bucket of stack.buckets) {
    const h = await stack.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (h.ContentLength !== size) throw new Error(`web: ${bucket}/${key} holds ${h.ContentLength} B, expected ${size}`);
  }
}

async function removeCopies(stack: BenchStack, key: string): Promise<void> {
  for (const bucket of stack.buckets) await stack.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** `file` set on the picker of a freshly loaded page (its listing whole first); the time until its job reads stored. */
/** The parts of a page upload (Resource Timing, ms from the moment the file was set): how many, when the first was sent, when the last was answered. */
interface UploadParts {
  n: number;
  first: number;
  last: number;
}

async function pageUpload(browser: Browser, stack: BenchStack, file: string, name: string): Promise<{ ms: number; problems: string[]; parts: UploadParts }> {
  const { context, problems } = await signedContext(browser, stack.token);
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(LISTING_TIMEOUT_MS);
    await page.goto(`${stack.apiUrl.replace(/\/$/, '')}/`);
    // The upload starts on a quiet page: the listing loaded, so it does not compete.
    await page.locator('.toolbar .count', { hasText: /^\s*\d+ files/ }).waitFor();
    const job = page.locator(`li.job[data-name="${name}"]`);
    const since = (await page.evaluate(() => (globalThis as any).performance.now())) as number;
    const t0 = nowMs();
    await page.getByLabel('Choose files').setInputFiles(file);
    await page.locator(`li.job.done[data-name="${name}"], li.job.failed[data-name="${name}"]`).waitFor({ timeout: UPLOAD_TIMEOUT_MS });
    const ms = nowMs() - t0;
    const words = (await job.innerText()).replace(/\s+/g, ' ');
    if (!/\bdone\b/.test((await job.getAttribute('class')) ?? '')) throw new Error(`web: the page's upload of ${name} failed: ${words}`);
    if (!/stored on server1, server2/.test(words)) throw new Error(`web: the page's upload of ${name} ended with "${words}"`);
    const parts = (await page.evaluate((t: number) => {
      const all = ((globalThis as any).performance.getEntriesByType('resource') as { name: string; startTime: number; responseEnd: number }[]).filter((e) => e.startTime >= t);
      const ps = all.filter((e) => /[?&]partNumber=\d/.test(e.name));
      return { n: ps.length, first: Math.min(...ps.map((e) => e.startTime)) - t, last: Math.max(...ps.map((e) => e.responseEnd)) - t };
    }, since)) as UploadParts;
    return { ms, problems, parts };
  } finally {
    await context.close();
  }
}

async function upload({ sizes, log }: BenchContext, stack: BenchStack, browser: Browser, dir: string, bytes: number, metric: string): Promise<Row> {
  const goal = `≤ ${UPLOAD_GOAL.toFixed(1)}×`;
  const file = join(dir, 'big.bin');
  await pipeline(contentStream(bytes, newSeed()), createWriteStream(file));
  const env = { ...process.env, DFS_TOKEN: stack.token };
  // Trials of 6 MiB (multipart: over the 4 MiB inline limit), not timed.
  const trial = join(dir, 'web-trial.bin');
  await pipeline(contentStream(6 * MiB, newSeed()), createWriteStream(trial));
  const broken = await trialDfs(['put', trial, '--as', 'bench/dfs-trial.bin', '--to', 'all', '--json', '--endpoint', stack.apiUrl], { env });
  if (broken) return skipped('web', metric, goal, broken);
  log('web: upload trial from the page');
  await pageUpload(browser, stack, trial, 'web-trial.bin');
  await expectCopies(stack, 'web-trial.bin', 6 * MiB);
  for (const k of ['web-trial.bin', 'bench/dfs-trial.bin']) await removeCopies(stack, k);

  const pageMs: number[] = [];
  const parts: UploadParts[] = [];
  const dfsMs: number[] = [];
  const notes: string[] = [];
  const problems = new Set<string>();
  for (let r = 0; r < sizes.runs; r++) {
    log(`web: upload run ${r + 1}/${sizes.runs}`);
    const name = `web-upload-${r}.bin`; // a link to the same bytes: the name is what the page stores
    const path = join(dir, name);
    linkSync(file, path);
    const p = await pageUpload(browser, stack, path, name);
    p.problems.forEach((x) => problems.add(x));
    await expectCopies(stack, name, bytes);
    await removeCopies(stack, name);
    rmSync(path);
    pageMs.push(p.ms);
    parts.push(p.parts);

    const key = `bench/dfs-put-${r}.bin`;
    const { run, failedOnce } = await runDfsRetried(['put', file, '--as', key, '--to', 'all', '--json', '--endpoint', stack.apiUrl], { env });
    if (failedOnce) notes.push(`a dfs put failed once and was retried: ${failedOnce}`);
    await expectCopies(stack, key, bytes);
    await removeCopies(stack, key);
    dfsMs.push(run.ms);
  }
  const ratio = median(pageMs) / median(dfsMs);
  const rate = (ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(1)} MB/s`;
  const seen = [...problems].slice(0, 3);
  return {
    bench: 'web',
    metric,
    value: `${fmtMs(median(pageMs))} (${rate(median(pageMs))})`,
    peer: `${fmtMs(median(dfsMs))} (${rate(median(dfsMs))})`,
    ratio,
    goal,
    verdict: ratio <= UPLOAD_GOAL ? 'pass' : 'miss',
    note: [
      `median of ${sizes.runs} (${samples('page', pageMs)}; ${samples('dfs put', dfsMs)}); page: from setting the picker's file to its job reading "stored on server1, server2", on a freshly loaded page whose listing was whole; dfs: spawn to exit; both through client/multipart.ts, parts presigned straight to s3rver; every copy checked on both buckets, then removed; MB/s of the file; the page's ${parts[0]!.n} part PUTs (both stores) went from ${samples('', parts.map((x) => x.first)).trim()} to ${samples('', parts.map((x) => x.last)).trim()} after the file was set`,
      ...notes,
      ...(seen.length ? [`the page reported: ${seen.join('; ')}`] : []),
    ].join('; '),
  };
}
