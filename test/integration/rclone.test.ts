import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { replicateNotification } from '../../lib/replicate';
import { readFile } from '../../lib/read';
import { putFile } from '../../lib/upload';
import { META } from '../../lib/stamps';
import type { Deps } from '../../lib/deps';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { EventTap } from '../helpers/events';

/*
 * rclone keeps a file's mtime in the same x-amz-meta-mtime as we do, as seconds with a fraction.
 * The real rclone (Debian's, which .ci/run installs) writes into server1 and lists server2, so a
 * round trip shows both sides read each other's mtimes and replication keeps rclone's file.
 */

const run = promisify(execFile);
const hasRclone = run('rclone', ['version']).then(
  () => true,
  () => false,
);

let s3: LocalS3;
let tap: EventTap;
let deps: Deps;
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  s3 = await startS3rver(['server1', 'server2', 'control']);
  tap = new EventTap(s3);
  deps = makeDeps(['server1', 'server2'].map((name) => ({ name, bucket: name, s3: s3.client })), { flavor: 's3rver' });
  dir = mkdtempSync(join(tmpdir(), 'rclone-'));
  writeFileSync(join(dir, 'rclone.conf'), ''); // the remote is defined by the environment below
  const { AWS_CA_BUNDLE: _ca, ...rest } = process.env; // rclone refuses an unreadable CA bundle
  env = {
    ...rest,
    RCLONE_CONFIG: join(dir, 'rclone.conf'),
    RCLONE_CONFIG_LOCAL_TYPE: 's3',
    RCLONE_CONFIG_LOCAL_PROVIDER: 'Other',
    RCLONE_CONFIG_LOCAL_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_LOCAL_ACCESS_KEY_ID: 'S3RVER',
    RCLONE_CONFIG_LOCAL_SECRET_ACCESS_KEY: 'S3RVER',
    RCLONE_CONFIG_LOCAL_FORCE_PATH_STYLE: 'true',
    RCLONE_S3_NO_CHECK_BUCKET: 'true',
  };
});
afterAll(async () => {
  await s3?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const rclone = (...args: string[]) => run('rclone', args, { env, timeout: 30_000 });

/** `rclone lsl` lines as {path: mtime string}; fails the test on anything rclone says on stderr. */
async function lsl(remote: string): Promise<Record<string, string>> {
  const { stdout, stderr } = await rclone('lsl', remote);
  expect(stderr).toBe('');
  return Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const m = /^\s*\d+ (\S+ \S+) (.+)$/.exec(line)!;
        return [m[2]!, m[1]!];
      }),
  );
}

/** Runs the test when rclone is installed; in CI (which installs it) its absence is a failure. */
const withRclone = (name: string, fn: () => Promise<void>) =>
  it(name, async () => {
    if (!(await hasRclone)) {
      if (process.env.CI) throw new Error('rclone is not installed: .ci/run installs it with apt-get install rclone');
      console.warn(`skipped "${name}": rclone is not installed (apt-get install rclone)`); // eslint-disable-line no-console
      return;
    }
    await fn();
  });

describe('rclone and s3-dfs side by side', () => {
  withRclone("replicates a file rclone wrote, keeping rclone's mtime, which rclone reads back on the other store", async () => {
    const local = join(dir, 'from-rclone.txt');
    writeFileSync(local, 'written by rclone copyto');
    const mtime = new Date('2024-01-15T09:00:00.125Z'); // a fraction a double holds exactly
    utimesSync(local, mtime, mtime);
    await rclone('copyto', local, 'local:server1/from-rclone.txt');
    for (const e of tap.take(['server1'])) await replicateNotification(deps, e, { pause: async () => undefined });
    for (const e of tap.take(['server1', 'server2'])) await replicateNotification(deps, e, { pause: async () => undefined });

    expect(await lsl('local:server2')).toMatchObject({ 'from-rclone.txt': '2024-01-15 09:00:00.125000000' });
    const answer = await readFile(deps, 'from-rclone.txt', { meta: true });
    expect(answer).toMatchObject({ status: 'SINGLE', copies: [{ mtime: mtime.toISOString() }, { mtime: mtime.toISOString() }] });
    const copy = await s3.client.send(new GetObjectCommand({ Bucket: 'server2', Key: 'from-rclone.txt' }));
    expect(await copy.Body!.transformToString()).toBe('written by rclone copyto');
    expect(copy.Metadata?.[META.made]).toBeDefined(); // stamped by its event, the mtime left as rclone wrote it
  });

  withRclone('writes mtimes rclone reads: a file put through dfs lists with its own mtime and no error', async () => {
    const mtime = Date.UTC(2025, 2, 3, 4, 5, 6, 789);
    await putFile(deps, { key: 'from-dfs.txt', body: Buffer.from('written by dfs'), to: 'all', mtime: String(mtime) });
    const listed = await lsl('local:server1');
    expect(listed['from-dfs.txt']).toBe('2025-03-03 04:05:06.789000000');
  });
});
