/**
 * The peers dfs is measured against, run as the user would run them, on the bench's S3:
 * Debian's awscli (/usr/bin/aws, not whatever `aws` is first on PATH) and rclone.
 * Every command runs under /usr/bin/time so its peak RSS is known too.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nowMs } from './harness';

export const AWS = '/usr/bin/aws';
export const RCLONE = '/usr/bin/rclone';
const TIME = '/usr/bin/time';

/** The programs benchmarks run, where they are looked for, and the Debian package of each. */
export const PEERS = {
  rclone: { path: RCLONE, apt: 'rclone' },
  aws: { path: AWS, apt: 'awscli' },
  time: { path: TIME, apt: 'time' },
} as const;
export type PeerName = keyof typeof PEERS;

const runnable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The peers among `names` that are not installed where the bench calls them. */
export function missingPeers(names: Iterable<PeerName>): PeerName[] {
  return [...new Set(names)].filter((n) => !runnable(PEERS[n].path));
}

/** What to tell someone whose machine lacks `missing`: which, where, and the one command that installs them. */
export function installAdvice(missing: PeerName[]): string {
  const list = missing.map((n) => `${PEERS[n].apt} (${PEERS[n].path})`).join(', ');
  const pkgs = [...new Set(missing.map((n) => PEERS[n].apt))].join(' ');
  return `missing: ${list}
install with:  sudo apt-get install -y ${pkgs}    (or: npm run bench:setup)`;
}

/** rclone's remote `local:` on the given S3; AWS_CA_BUNDLE (an HTTPS setting) is left out. */
export function rcloneEnv(endpoint: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RCLONE_CONFIG: '/dev/null',
    RCLONE_CONFIG_LOCAL_TYPE: 's3',
    RCLONE_CONFIG_LOCAL_PROVIDER: 'Other',
    RCLONE_CONFIG_LOCAL_ENDPOINT: endpoint,
    RCLONE_CONFIG_LOCAL_ACCESS_KEY_ID: 'S3RVER',
    RCLONE_CONFIG_LOCAL_SECRET_ACCESS_KEY: 'S3RVER',
    RCLONE_CONFIG_LOCAL_REGION: 'us-east-1',
    RCLONE_CONFIG_LOCAL_FORCE_PATH_STYLE: 'true',
  };
  delete env.AWS_CA_BUNDLE;
  return env;
}

/** awscli with s3rver's fixed keys and nothing read from the user's own configuration. */
export function awsEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
  };
}

export interface CommandRun {
  /** Wall time from spawn to exit, ms. */
  ms: number;
  /** Peak RSS of the command (its largest process, as getrusage reports it). */
  maxRssBytes: number;
  /** CPU time it used, user + system, ms: what it costs a busy machine, whatever the wall time. */
  cpuMs: number;
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Exit codes that are not failures (rclone check says 1 when it found differences). */
  okCodes?: number[];
}

/** Runs a command under /usr/bin/time; throws when it exits with a code not in `okCodes` (default [0]). */
export async function runCommand(cmd: string, args: string[], opts: CommandOptions = {}): Promise<CommandRun> {
  const dir = mkdtempSync(join(tmpdir(), 's3-dfs-bench-time-'));
  const timeFile = join(dir, 'time');
  try {
    const missing = missingPeers(['time', ...(Object.keys(PEERS) as PeerName[]).filter((n) => PEERS[n].path === cmd)]);
    if (missing.length > 0) throw new Error(installAdvice(missing));
    const child = spawn(TIME, ['-f', '%M %U %S', '-o', timeFile, cmd, ...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const t0 = nowMs();
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c) => resolve(c ?? -1));
    });
    const ms = nowMs() - t0;
    const stdout = Buffer.concat(out).toString();
    const stderr = Buffer.concat(err).toString();
    if (!(opts.okCodes ?? [0]).includes(code)) {
      throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${(stderr.trim() || stdout.trim()).slice(-4000)}`);
    }
    // /usr/bin/time appends "Command exited with non-zero status N" before the figure.
    const lines = readFileSync(timeFile, 'utf8').trim().split('\n');
    const [rssKiB, user, system] = lines[lines.length - 1]!.split(' ').map(Number);
    return { ms, maxRssBytes: rssKiB! * 1024, cpuMs: (user! + system!) * 1000, code, stdout, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs several commands at once; the wall time is until the last one ends. */
export async function runTogether(runs: (() => Promise<CommandRun>)[]): Promise<{ ms: number; runs: CommandRun[] }> {
  const t0 = nowMs();
  const all = await Promise.all(runs.map((r) => r()));
  return { ms: nowMs() - t0, runs: all };
}
