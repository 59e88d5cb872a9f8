/**
 * Runs the real `node bin/dfs.js watch …` against a fake API (node:http on 127.0.0.1) whose
 * journal answers a scripted sequence of pages, keyed by the `after` cursor.
 */
import type { ServerResponse } from 'node:http';
import type { EventPage, JournalEvent } from '../../lib/types';
import { noRoute, sendJson, startDfs, useCliSandbox, type SeenRequest } from '../helpers/cli';

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

let refuse = false;

function serve(req: SeenRequest, res: ServerResponse): void {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/events') return noRoute(req, res);
  if (refuse) return sendJson(res, 400, { error: 'BadRequest', message: '"after" must be an event id from a previous answer' });
  sendJson(res, 200, PAGES[url.searchParams.get('after') ?? ''] ?? { events: [], next: null, more: false });
}

const sandbox = useCliSandbox(serve);
/** The `after` of each journal read in this test. */
const seen = () =>
  sandbox.api.requests
    .map((r) => new URL(r.url, 'http://x'))
    .filter((url) => url.pathname === '/events')
    .map((url) => url.searchParams.get('after') ?? '');

beforeEach(() => {
  refuse = false;
});

const start = (args: string[]) => startDfs(args, { cwd: sandbox.home, env: sandbox.env({ TZ: 'UTC' }) });
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
    expect(seen()).toEqual(['', E2.id, E3.id]);
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
    expect(seen()).toEqual(['', E2.id, E3.id]);
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
    const { child, done, firstOutput } = start(['watch']);
    await firstOutput;
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
    expect(seen()).toEqual([]);
  });
});
