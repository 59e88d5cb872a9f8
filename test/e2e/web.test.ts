import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { chromium, type Browser, type Page, type Request } from 'playwright-core';
import { startLocalStack, type LocalStack } from '../../scripts/stack';
import { createS3Client } from '../../lib/config';

/*
 * The web page in Debian's headless Chromium (playwright-core drives /usr/bin/chromium; no
 * browser is downloaded) against the local stack with the seed: sign-in, the listing's states,
 * both versions of fileB downloaded, a 6 MiB upload through the presigned multipart flow
 * straight to s3rver (CORS), a dropped file, delete, lock and unlock, the live feed, the sync
 * preview and apply, and the page at 400 px. One stack, one browser; the steps build on each
 * other, so they run in order. DFS_WEB_SCREENSHOTS=docs saves the screenshots of docs/.
 */
const CHROMIUM = process.env.DFS_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const SHOTS = process.env.DFS_WEB_SCREENSHOTS ? resolve(__dirname, '../..', process.env.DFS_WEB_SCREENSHOTS) : undefined;
const WAIT = 15_000;

const V1 = 'This is version 1 of file B.';
const V2 = 'This is version 2 of file B, which is more recent.';

const dataDir = mkdtempSync(join(tmpdir(), 'dfs-e2e-web-'));
let stack: LocalStack;
let s3: S3Client;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  [stack, browser] = await Promise.all([
    startLocalStack({ dataDir, reset: true, quiet: true }),
    chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true }),
  ]);
  s3 = createS3Client({ endpoint: stack.s3Endpoint });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  // A policy violation or an uncaught error is a failure whatever the step that caused it.
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  s3?.destroy();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const row = (name: string) => page.locator(`tr[data-name="${name}"]`);
const bucket = (store: string) => stack.stores.find((s) => s.name === store)!.bucket;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function objectBytes(store: string, key: string): Promise<Buffer | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket(store), Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  } catch {
    return undefined;
  }
}

async function shot(name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name), fullPage: true });
}

describe('the web page against the local stack', () => {
  it('asks for a token, and says so in words when the server refuses one', async () => {
    await page.goto(`${stack.apiUrl}/`);
    await page.getByLabel('Token').fill(`dfs_nobody_${'A'.repeat(43)}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('not signed in: the server did not accept the token').waitFor();
    await page.getByLabel('Token').waitFor();
    expect(await page.evaluate('sessionStorage.length')).toBe(0); // strings: the test's own types hold no DOM
  }, 30_000);

  it('signs in and shows fileA same, fileB different, fileC partial, one column per store', async () => {
    await page.getByLabel('Token').fill(stack.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await row('fileC.txt').waitFor();
    const cells = async (name: string) => (await row(name).locator('td, th').allInnerTexts()).map((t) => t.trim());
    expect((await cells('fileA.txt')).slice(0, 7)).toEqual(['0', 'fileA.txt', '39 B', expect.stringMatching(/^\d{4}-\d\d-\d\d /), 'same', '39 B', '39 B']);
    expect((await cells('fileB.txt')).slice(4, 5)).toEqual(['different']);
    expect((await cells('fileC.txt')).slice(4, 7)).toEqual(['partial', 'missing', '34 B']);
    expect((await page.locator('thead th').allInnerTexts()).map((t) => t.replace(/[▲▼]/, '').trim())).toEqual(['#', 'Name', 'Size', 'Modified (UTC)', 'State', 'server1', 'server2', 'Actions']);
    await page.getByText('3 files').waitFor();
    await shot('web-listing.png');
  }, 30_000);

  it('downloads both versions of fileB, labelled with their stores, the newest marked, then keeps the newest everywhere', async () => {
    await page.getByRole('button', { name: 'Download fileB.txt' }).click();
    const dialog = page.getByRole('dialog', { name: 'fileB.txt' });
    await dialog.getByText('the stores hold 2 versions').waitFor();
    expect(await dialog.locator('li', { hasText: 'server2' }).locator('.badge.newest').count()).toBe(1);
    await shot('web-different.png');
    for (const [store, text] of [['server1', V1], ['server2', V2]] as const) {
      const [download] = await Promise.all([page.waitForEvent('download'), dialog.getByRole('button', { name: `Download fileB.${store}.txt` }).click()]);
      expect(download.suggestedFilename()).toBe(`fileB.${store}.txt`);
      expect(readFileSync((await download.path())!, 'utf8')).toBe(text);
    }
    await dialog.getByRole('button', { name: 'Keep newest everywhere' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByText('fileB.txt: the newest version is now on every store.').waitFor();
    await row('fileB.txt').locator('.badge.same').waitFor();
    expect((await objectBytes('server1', 'fileB.txt'))?.toString()).toBe(V2);
  }, 30_000);

  it('locks fileB at server1 with the holder shown, and unlocks it; the live feed shows both', async () => {
    await page.getByRole('button', { name: 'Lock fileB.txt' }).click();
    const dialog = page.getByRole('dialog', { name: 'Lock fileB.txt' });
    await dialog.getByLabel('Reason (optional)').fill('e2e');
    await dialog.getByRole('button', { name: 'Lock', exact: true }).click();
    await row('fileB.txt').getByText('locked by local@server1').waitFor();
    await page.locator('.feed li[data-action="locked"]', { hasText: 'fileB.txt' }).waitFor();

    await page.getByRole('button', { name: 'Unlock fileB.txt at server1' }).click();
    await page.getByRole('dialog', { name: 'Unlock fileB.txt at server1' }).getByRole('button', { name: 'Unlock', exact: true }).click();
    await row('fileB.txt').getByText('locked by').waitFor({ state: 'detached' });
    await page.locator('.feed li[data-action="unlocked"]', { hasText: 'fileB.txt' }).waitFor();
  }, 40_000);

  it('uploads a 6 MiB file with the picker through the multipart flow, byte-identical on both stores', async () => {
    const bytes = randomBytes(6 * 1024 * 1024);
    const parts: string[] = [];
    const seeParts = (req: Request) => {
      if (req.method() === 'PUT' && /[?&]partNumber=\d/.test(req.url())) parts.push(new URL(req.url()).pathname);
    };
    page.on('request', seeParts);
    await page.getByLabel('Choose files').setInputFiles({ name: 'big.bin', mimeType: 'application/octet-stream', buffer: bytes });
    const job = page.locator('li.job[data-name="big.bin"]');
    await job.getByText('stored on server1, server2').waitFor({ timeout: 60_000 });
    await row('big.bin').waitFor();
    page.off('request', seeParts);
    // The parts went from the page straight to each store's bucket, as many to one as to the other.
    expect([...new Set(parts)].sort()).toEqual(['server1', 'server2'].map((s) => `/${bucket(s)}/big.bin`));
    expect(parts.filter((p) => p.includes(bucket('server1'))).length).toBe(parts.length / 2);
    for (const store of ['server1', 'server2']) expect(sha((await objectBytes(store, 'big.bin'))!)).toBe(sha(bytes));
  }, 90_000);

  it('uploads a dropped file and deletes it after a confirmation naming it', async () => {
    const drop = await page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped on the page'], 'dropped.txt', { type: 'text/plain' }));
      return dt;
    })()`);
    await page.locator('.drop').dispatchEvent('drop', { dataTransfer: drop });
    await row('dropped.txt').waitFor();
    expect((await objectBytes('server2', 'dropped.txt'))?.toString()).toBe('dropped on the page');

    await page.getByRole('button', { name: 'Delete dropped.txt' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete dropped.txt?' });
    await dialog.getByRole('button', { name: 'Delete dropped.txt' }).click();
    await row('dropped.txt').waitFor({ state: 'detached' });
    expect(await objectBytes('server1', 'dropped.txt')).toBeUndefined();
    expect(await objectBytes('server2', 'dropped.txt')).toBeUndefined();
  }, 40_000);

  it('previews the sync as a table, applies it, and the stores agree', async () => {
    await page.getByRole('button', { name: 'Preview sync' }).click();
    const plan = page.locator('table.plan');
    await plan.waitFor();
    expect(await plan.locator('tbody tr').allInnerTexts()).toEqual([expect.stringMatching(/^fileC\.txt\s+copy\s+server2\s+server1\s+\S/)]);
    await shot('web-sync.png');
    await page.getByRole('button', { name: 'Apply 1 step' }).click();
    await page.getByText('Sync applied: 1 step.').waitFor();
    await row('fileC.txt').locator('.badge.same').waitFor();
    expect((await objectBytes('server1', 'fileC.txt'))?.toString()).toBe('This file only exists on SERVER 2.');
  }, 40_000);

  it('reads at 400 px: nothing wider than the window, rows as cards', async () => {
    await page.setViewportSize({ width: 400, height: 900 });
    await row('fileA.txt').waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(400);
    await shot('web-narrow.png');
  });

  it('ran without a policy violation or an uncaught error', () => {
    expect(problems).toEqual([]);
  });
});
