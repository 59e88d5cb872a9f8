/**
 * Runs the real `node bin/dfs.js watch …` against a fake API (node:http on 127.0.0.1) whose
 * journal answers a scripted sequence of pages, keyed by the `after` cursor.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventPage, JournalEvent } from '../../lib/types';

const BIN = join(__dirname, '..', '..', 'bin', 'dfs.js');

const ev = (n: number, rest: Omit<JournalEvent, 'id' | 'time'>): JournalEvent => ({
  id: `00171455760000${n}-0000000${n}`,
  time: `2024-05-01T10:00:0${n}.000Z`,
  ...rest,
});
const E1 = ev(1, { action: 'replicate', key: 'fileB.txt', from: 'server1', to: ['server2'], reason: 'modified' });
const E2 = ev(2, { action: 'delete', key: 'old.txt', from: 'server2', to: ['server1'], reason: 'deleted' });
const E3 = ev(3, { action: 'reconcile', key: 'x.txt', to: ['server1'], reason: 'deleted at 2024-05-01T09:00:00.000Z' });
const E4 = ev(4, { action: 'lock', key: 'fileC.txt' });

/** Pages by `after` ("" for the first call). `more` on the first page makes the CLI ask again at once. */
const PAGES: Record<string, EventPage> = {
  '': { events: [E1, E2], next: E2.id, more: true },
  [E2.id]: { events: [E3], next: E3.id, more: false },
  // E3 again: a server may repeat the boundary event; the CLI must not print it twice.
  [E3.id]: { events: [E3, E4], next: E4.id, more: false },
  [E4.id]: { events: [], next: E4.id, more: false },
};

let server: Server;
let endpoint: string;
let seen: string[] = [];
let refuse = false;

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function serve(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '', 'http://x');
  if (url.pathname !== '/events') return answer(res, 404, { error: 'NotFound', message: `no route for ${req.method} ${req.url}` });
  seen.push(url.searchParams.get('after') ?? '');
  if (refuse) return answer(res, 400, { error: 'BadRequest', message: '"after" must be an event id from a previous answer' });
  answer(res, 200, PAGES[url.searchParams.get('after') ?? ''] ?? { events: [], next: null, more: false });
}

let home: string;

beforeAll(async () => {
  server = createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  home = mkdtempSync(join(tmpdir(), 'dfs-home-'));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(home, { recursive: true, force: true });
});

beforeEach(() => {
  seen = [];
  refuse = false;
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Ran>; firstLine: Promise<void> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: home,
    env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, 'config'), DFS_ENDPOINT: endpoint, TZ: 'UTC', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const firstLine = new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Ran>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done, firstLine };
}

const dfs = (...args: string[]) => start(args).done;

describe('dfs watch', () => {
  it('prints one line per event, following next, at once again while the answer says more', async () => {
    const r = await dfs('watch', '--count', '4');
    expect(r).toEqual({
      code: 0,
      stdout: [
        '10:00:01  server1 → server2  fileB.txt  replicate (modified)',
        '10:00:02  server2 → server1  old.txt  delete (deleted)',
        '10:00:03  → server1  x.txt  reconcile (deleted at 2024-05-01T09:00:00.000Z)',
        '10:00:04  fileC.txt  lock',
        '',
      ].join('\n'),
      stderr: '',
    });
    expect(seen).toEqual(['', E2.id, E3.id]);
  });

  it('--json prints each event as one JSON line', async () => {
    const r = await dfs('watch', '--json', '--count', '3');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([E1, E2, E3]);
  });

  it('--since-start leaves out the backlog of the first answers', async () => {
    const r = await dfs('watch', '--since-start', '--count', '1');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('10:00:04  fileC.txt  lock\n');
    expect(seen).toEqual(['', E2.id, E3.id]);
  });

  // How many of the four events come within the timeout depends on the machine's load.
  it('--timeout ends a watch that has no --count with exit 0', async () => {
    const r = await dfs('watch', '--timeout', '0.5');
    expect(r.code).toBe(0);
    expect(['10:00:01', '10:00:02', '10:00:03', '10:00:04'].join('\n')).toContain(r.stdout.split('\n').filter(Boolean).map((l) => l.slice(0, 8)).join('\n'));
  });

  it('--timeout before --count events exits 1', async () => {
    const r = await dfs('watch', '--count', '10', '--timeout', '0.5');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dfs: timed out after 0\.5 s with [0-4] of 10 events\n$/);
  });

  it('stops on Ctrl-C with exit 0', async () => {
    const { child, done, firstLine } = start(['watch']);
    await firstLine;
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('exits 2 when the server refuses the request', async () => {
    refuse = true;
    const r = await dfs('watch');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('dfs: "after" must be an event id from a previous answer\n');
  });

  it.each([
    [['--count', '0'], "option '--count <n>' argument '0' is invalid. --count must be a whole number of 1 or more."],
    [['--count', 'two'], '--count must be a whole number of 1 or more.'],
    [['--timeout', '-1'], 'a number of seconds above 0 is needed.'],
  ])('refuses %j with exit 2 before any request', async (args, message) => {
    const r = await dfs('watch', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(seen).toEqual([]);
  });
});
