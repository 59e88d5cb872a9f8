import type { JournalEvent, PlanEntry, ReadAnswer, SyncReport } from '../../lib/types';
import { CliError } from '../../cli/exit';
import type { GetResult } from '../../cli/get';
import type { LsRow } from '../../cli/ls';
import {
  LsJson,
  LsTable,
  WatchLines,
  clean,
  describeApplied,
  describeGet,
  describeLocked,
  describePut,
  describeReport,
  describeRm,
  describeUnlocked,
  errorJson,
  formatClock,
  formatLocalTime,
  formatTime,
  getJson,
  lockCell,
  lockJson,
  lockTable,
  planLines,
  storesCell,
  unlockJson,
  watchLine,
} from '../../cli/output';
import type { LockInfo } from '../../cli/locks';
import type { UnlockResult } from '../../cli/locking';
import { formatBytes } from '../../cli/progress';
import type { PutResult } from '../../cli/put';
import type { Target } from '../../cli/save';

const target = (shown: string, stores: string[], size: number, newest: boolean, mtime = '2024-05-01T10:00:00.000Z'): Target => ({
  name: shown.replace(/^\.\//, ''), path: `/x/${shown}`, shown, size, mtime, stores, newest, content: { base64: '' },
});

const different: ReadAnswer = {
  status: 'DIFFERENT',
  key: 'fileB.txt',
  versions: [
    { stores: ['server1'], size: 28, etag: '"a"', mtime: '2024-05-01T10:00:00.000Z', newest: false, content: { base64: 'QUJD' } },
    { stores: ['server2'], size: 2048, etag: '"b"', mtime: '2024-05-02T11:30:00.000Z', newest: true, content: { url: 'http://s3/x', expires: 'e' } },
  ],
  unavailable: [],
};

describe('describeGet', () => {
  it('says where identical copies live', () => {
    const answer: ReadAnswer = { status: 'SINGLE', key: 'fileA.txt', copies: [{ store: 'server1', size: 40, etag: '', mtime: '' }, { store: 'server2', size: 40, etag: '', mtime: '' }], unavailable: ['server3'] };
    const result: GetResult = { answer, saved: [target('./fileA.txt', ['server1', 'server2'], 40, true)], exitCode: 0 };
    expect(describeGet('fileA.txt', result)).toEqual({
      out: ['saved fileA.txt (40 B, identical on server1, server2)'],
      err: ['dfs: warning: server3 did not answer; the result covers only the stores that did'],
    });
  });

  it('lists each saved version with size, mtime, stores and the newest', () => {
    const saved = [target('./fileB.server1.txt', ['server1'], 28, false), target('./fileB.server2.txt', ['server2'], 2048, true, '2024-05-02T11:30:00.000Z')];
    expect(describeGet('fileB.txt', { answer: different, saved, exitCode: 4 }).out).toEqual([
      'fileB.txt differs between stores; saved 2 versions:',
      '  fileB.server1.txt     28 B  2024-05-01 10:00:00Z  server1',
      '  fileB.server2.txt  2.0 KiB  2024-05-02 11:30:00Z  server2  (newest)',
      'keep one as fileB.txt with --resolve newest, or --resolve server1|server2',
    ]);
  });

  it('says when the resolved version is not the newest', () => {
    const saved = [target('out/fileB.txt', ['server1'], 28, false)];
    expect(describeGet('fileB.txt', { answer: different, saved, exitCode: 0 }).out).toEqual([
      'saved out/fileB.txt (28 B, version on server1, not the newest (server2 has newer); other versions on server2)',
    ]);
  });
});

describe('getJson', () => {
  it('replaces inline base64 by its byte length, keeps URLs, and adds the saved paths', () => {
    const json = getJson({ answer: different, saved: [target('./fileB.server1.txt', ['server1'], 28, false)], exitCode: 4 });
    expect(json).toMatchObject({ status: 'DIFFERENT', saved: ['./fileB.server1.txt'] });
    expect((json.versions as Array<{ content: unknown }>).map((v) => v.content)).toEqual([{ inlineBytes: 3 }, { url: 'http://s3/x', expires: 'e' }]);
  });
});

describe('errorJson', () => {
  it('is {error, message} plus details', () => {
    expect(errorJson(new CliError(1, 'Exists', 'not overwriting ./a', { existing: ['./a'] }))).toEqual({ error: 'Exists', message: 'not overwriting ./a', existing: ['./a'] });
  });
});

describe('formatting', () => {
  it('escapes control characters so server text cannot steer the terminal', () => {
    expect(clean('a\u001b[2Jb\u009bc\n')).toBe('a\\u001b[2Jb\\u009bc\\u000a');
  });

  it('formats sizes in binary units and times without milliseconds', () => {
    expect([0, 1023, 1024, 3 * 1024 * 1024 + 4321, 5 * 1024 ** 4].map(formatBytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '3.0 MiB', '5.0 TiB']);
    expect(formatTime('2024-05-02T11:30:00.123Z')).toBe('2024-05-02 11:30:00Z');
    expect(formatTime('yesterday')).toBe('yesterday');
  });
});

describe('local times', () => {
  it('shows ls times to the minute and watch times to the second, in the given or local zone', () => {
    expect(formatLocalTime('2024-05-01T18:45:07.000Z', 'Asia/Kolkata')).toBe('2024-05-02 00:15');
    expect(formatLocalTime('2024-05-01T18:45:07.000Z', 'UTC')).toBe('2024-05-01 18:45');
    expect(formatClock('2024-05-01T18:45:07.000Z', 'America/New_York')).toBe('14:45:07');
    expect(formatLocalTime('2024-05-01T18:45:07.000Z')).toMatch(/^2024-05-0[12] \d\d:\d\d$/);
    expect(formatClock('soon\u001b')).toBe('soon\\u001b');
  });
});

const copyOf = (size: number) => ({ size, etag: 'e', mtime: '2024-05-01T10:00:00.000Z' });
const row = (index: number, name: string, size: number, state: LsRow['state'], stores: LsRow['stores']): LsRow => ({
  index, name, size, mtime: '2024-05-01T10:00:00.000Z', state, stores,
});

describe('storesCell', () => {
  it('lists the stores holding a name in the server\'s order, then marks the missing ones', () => {
    expect(storesCell({ server1: copyOf(1), server2: copyOf(1) })).toBe('server1,server2');
    expect(storesCell({ server1: null, server2: copyOf(1), server3: null })).toBe('server2 (missing: server1,server3)');
    expect(storesCell({})).toBe('-');
  });
});

describe('LsTable', () => {
  it('prints a header, then rows whose columns only grow from page to page', () => {
    const table = new LsTable();
    const both = { server1: copyOf(40), server2: copyOf(40) };
    expect(table.lines([row(0, 'a.txt', 40, 'same', both), row(1, 'b.txt', 1229, 'partial', { server1: copyOf(1229), server2: null })])).toEqual([
      '#  NAME      SIZE  MODIFIED          STATE       STORES',
      expect.stringMatching(/^0 {2}a\.txt {5}40 B {2}2024-05-0\d \d\d:\d\d {2}same {8}server1,server2$/),
      expect.stringMatching(/^1 {2}b\.txt {2}1\.2 KiB {2}.{16} {2}partial {5}server1 \(missing: server2\)$/),
    ]);
    const next = table.lines([row(10, 'a-much-longer-name.txt', 5, 'different', both)]);
    expect(next).toEqual([expect.stringMatching(/^10 {2}a-much-longer-name\.txt {6}5 B {2}.{16} {2}different {3}server1,server2$/)]);
    expect(table.lines([])).toEqual([]);
  });

  it('escapes control characters in names', () => {
    expect(new LsTable().lines([row(0, 'x\u001b[2J', 1, 'same', {})])[1]).toContain('x\\u001b[2J');
  });

  it('adds a LOCK column, as wide as the widest lock to come, when some name is locked', () => {
    const ann = { holder: 'ann', since: 's', expires: 1, held: 3 };
    const bob = { holder: 'bob', since: 's', expires: 1, held: 0 };
    const table = new LsTable();
    table.useLocks([{ server1: ann }, { server1: ann, server2: bob }]);
    expect(table.lines([row(0, 'a.txt', 40, 'same', {}), { ...row(1, 'b.txt', 40, 'same', {}), lock: { server1: ann } }])).toEqual([
      expect.stringMatching(/ {2}STATE {7}LOCK {27}STORES$/),
      expect.stringMatching(/ {2}same {8}- {30}-$/),
      expect.stringMatching(/ {2}same {8}ann@server1\(3\) {17}-$/),
    ]);
    const none = new LsTable();
    none.useLocks([]);
    expect(none.lines([row(0, 'a.txt', 40, 'same', {})])[0]).not.toContain('LOCK');
  });
});

describe('lockCell', () => {
  it('shows holder@store(held) per locked store, escaped', () => {
    expect(lockCell({ server1: { holder: 'ann', since: 's', expires: 1, held: 3 } })).toBe('ann@server1(3)');
    expect(lockCell({ server1: { holder: 'ann', since: 's', expires: 1, held: 0 }, server2: { holder: 'b\u001b', since: 's', expires: 1, held: 1 } })).toBe(
      'ann@server1(0),b\\u001b@server2(1)',
    );
  });
});

describe('LsJson', () => {
  it('streams one valid document, one file per line', () => {
    let text = '';
    const doc = new LsJson((t) => void (text += t));
    expect(doc.started).toBe(false);
    doc.page([row(0, 'a', 1, 'same', {})]);
    doc.page([row(1, 'b', 2, 'same', {})]);
    doc.end({ unavailable: [], count: 2, pages: 2 });
    expect(text.split('\n')).toHaveLength(5);
    expect(JSON.parse(text)).toEqual({ files: [row(0, 'a', 1, 'same', {}), row(1, 'b', 2, 'same', {})], unavailable: [], count: 2, pages: 2 });
  });

  it('closes an empty listing and an error', () => {
    let text = '';
    new LsJson((t) => void (text += t)).end({ unavailable: [] });
    expect(JSON.parse(text)).toEqual({ files: [], unavailable: [] });
    text = '';
    const doc = new LsJson((t) => void (text += t));
    doc.page([row(0, 'a', 1, 'same', {})]);
    doc.end({ error: 'Internal', message: 'm' });
    expect(JSON.parse(text)).toMatchObject({ files: [{ name: 'a' }], error: 'Internal' });
  });
});

describe('sync report', () => {
  const entries: PlanEntry[] = [
    { key: 'fileB.txt', action: 'copy', from: 'server2', to: ['server1'], reason: 'server2 newer (2024-05-02T11:30:00.000Z vs server1 2024-05-01T10:00:00.000Z)' },
    { key: 'new-and-long.txt', action: 'copy', from: 'server1', to: ['server2', 'server3'], reason: 'missing on server2; missing on server3' },
    { key: 'x.txt', action: 'delete', from: ['server1'], deletedAt: '2024-05-03T08:00:00.000Z', reason: 'deleted at 2024-05-03T08:00:00.000Z' },
  ];

  it('aligns one line per step: action, name, direction, reason', () => {
    expect(planLines(entries)).toEqual([
      'copy    fileB.txt         server2 → server1          server2 newer (2024-05-02T11:30:00.000Z vs server1 2024-05-01T10:00:00.000Z)',
      'copy    new-and-long.txt  server1 → server2,server3  missing on server2; missing on server3',
      'delete  x.txt             from server1               deleted at 2024-05-03T08:00:00.000Z',
    ]);
  });

  it('counts first, like rclone check, with plurals that read right', () => {
    const report: SyncReport = { dryRun: true, counts: { match: 1, differ: 0, missing: { server1: 1, server2: 2 }, copies: 1, deletes: 0 }, entries: entries.slice(0, 1), unavailable: ['server3'] };
    expect(describeReport(report, true)).toEqual({
      out: ['1 matching file', '1 difference found', '1 file missing on server1', '2 files missing on server2', planLines(entries.slice(0, 1))[0], 'dry run: nothing changed; dfs sync would make 1 copy and 0 deletes'],
      err: ['dfs: warning: server3 did not answer; the plan covers only the stores that did'],
    });
    expect(describeReport({ ...report, unavailable: [] }, false).out).not.toContain(expect.stringMatching(/^dry run/));
  });

  it('sums up what was applied, and why steps failed', () => {
    expect(describeApplied(3, { done: 3, failed: [], notAttempted: 0, batches: 1 })).toEqual({ out: ['applied 3 of 3 steps'], err: [] });
    expect(describeApplied(250, { done: 99, failed: [{ key: 'a\nb', error: 'AccessDenied' }], notAttempted: 150, batches: 1 })).toEqual({
      out: ['applied 99 of 250 steps; 1 failed'],
      err: ['failed  a\\u000ab  AccessDenied', 'dfs: 150 steps were not attempted; run dfs sync again'],
    });
  });
});

describe('watchLine', () => {
  const at = '2024-05-01T10:00:01.000Z';
  it.each<[Omit<JournalEvent, 'id' | 'time'>, RegExp]>([
    [{ action: 'replicate', key: 'fileB.txt', from: 'server1', to: ['server2'], reason: 'modified' }, /^\d\d:00:01 {2}server1 → server2 {2}fileB\.txt {2}replicate \(modified\)$/],
    [{ action: 'replicate', key: 'f', from: 'server1', to: ['server2', 'server3'] }, / {2}server1 → server2,server3 {2}f {2}replicate$/],
    [{ action: 'reconcile', key: 'x.txt', to: ['server1'], reason: 'deleted' }, / {2}→ server1 {2}x\.txt {2}reconcile \(deleted\)$/],
    [{ action: 'skip', key: 'y', from: 'server2', reason: 'gone' }, /:01 {2}server2 {2}y {2}skip \(gone\)$/],
    [{ action: 'lock', key: 'fileC.txt' }, /^\d\d:00:01 {2}fileC\.txt {2}lock$/],
  ])('%j', (event, expected) => {
    expect(watchLine({ id: '1', time: at, ...event })).toMatch(expected);
  });
});

describe('WatchLines', () => {
  const at = (n: number) => `2024-05-01T10:00:0${n}.000Z`;
  const ev = (n: number, e: Omit<JournalEvent, 'id' | 'time'>): JournalEvent => ({ id: String(n), time: at(n), ...e });

  it('reads lock events as what happened at the locked store, naming the holder of queued updates once it saw the lock', () => {
    const lines = new WatchLines();
    const out = [
      ev(1, { action: 'queued', key: 'f', who: 'bob', to: ['server1'], reason: 'update held as #1: f is locked at server1' }),
      ev(2, { action: 'locked', key: 'f', who: 'ann', to: ['server2'], reason: 'until 2024-05-01T11:00:00.000Z' }),
      ev(3, { action: 'queued', key: 'f', who: 'replication', to: ['server2'], reason: 'update held as #3: f is locked at server2' }),
      ev(4, { action: 'queued', key: 'f', who: 'bob', to: ['server2'], reason: 'delete (deleted at 2024-05-01T10:00:03.000Z (by bob)) held as #4: f is locked at server2' }),
      ev(5, { action: 'applied', key: 'f', who: 'ann', to: ['server2'], reason: 'held update 3/4' }),
      ev(6, { action: 'unlock-forced', key: 'f', who: 'carl', to: ['server2'], reason: 'held by ann since 2024-05-01T10:00:02.000Z' }),
      ev(7, { action: 'unlocked', key: 'f', who: 'carl', to: ['server2'], reason: '4 held update(s) applied' }),
      ev(8, { action: 'queued', key: 'f', who: 'bob', to: ['server2'], reason: 'update held as #1: f is locked at server2' }),
      ev(9, { action: 'expired', key: 'f', who: 'ann', to: ['server1'], reason: 'lock of ann expired at 2024-05-01T10:00:00.000Z; 1 held update(s) applied' }),
    ].map((e) => lines.line(e).replace(/^\d\d:/, 'HH:'));
    expect(out).toEqual([
      'HH:00:01  server1  f  queued #1 (update by bob)',
      expect.stringMatching(/^HH:00:02 {2}server2 {2}f {2}locked by ann until 2024-05-01 \d\d:00$/),
      'HH:00:03  server2  f  queued #3 (update by replication; locked by ann)',
      'HH:00:04  server2  f  queued #4 (delete (deleted at 2024-05-01T10:00:03.000Z (by bob)) by bob; locked by ann)',
      'HH:00:05  server2  f  applied 3/4 (unlock by ann)',
      'HH:00:06  server2  f  unlock forced by carl (held by ann since 2024-05-01T10:00:02.000Z)',
      'HH:00:07  server2  f  unlocked by carl (4 held update(s) applied)',
      'HH:00:08  server2  f  queued #1 (update by bob)',
      'HH:00:09  server1  f  expired (lock of ann expired at 2024-05-01T10:00:00.000Z; 1 held update(s) applied)',
    ]);
  });

  it('keeps other events as watchLine has them, and odd reasons as they are', () => {
    const lines = new WatchLines();
    const e = ev(1, { action: 'replicate', key: 'f', from: 'server1', to: ['server2'], reason: 'modified' });
    expect(lines.line(e)).toBe(watchLine(e));
    expect(lines.line(ev(2, { action: 'queued', key: 'f', to: ['server1'], reason: 'something new\u001b' })).replace(/^\d\d:/, 'HH:')).toBe('HH:00:02  server1  f  queued (something new\\u001b)');
    expect(lines.line(ev(3, { action: 'applied', key: 'f', to: ['server1'], reason: 'odd' })).replace(/^\d\d:/, 'HH:')).toBe('HH:00:03  server1  f  applied (odd)');
    expect(lines.line(ev(4, { action: 'locked', key: 'f', to: ['server1'] })).replace(/^\d\d:/, 'HH:')).toBe('HH:00:04  server1  f  locked');
  });
});

describe('lock output', () => {
  const lock = (extra: Partial<LockInfo> = {}): LockInfo => ({ key: 'fileB.txt', store: 'server1', holder: 'ann', since: '2024-05-01T10:00:00.000Z', expires: Date.parse('2024-05-01T11:00:00.000Z'), next: 1, applied: 0, ...extra });

  it('says what was locked, for whom and until when, and what it does', () => {
    expect(describeLocked({ lock: lock(), index: 1, exitCode: 0 })).toEqual({
      out: [expect.stringMatching(/^locked fileB\.txt \(#1\) at server1 for ann until 2024-05-01 \d\d:00$/)],
      err: ["others' writes into server1's copy are held until dfs unlock fileB.txt; dfs lock again renews it"],
    });
    expect(describeLocked({ lock: lock({ next: 3 }), exitCode: 0 }).out[0]).toMatch(/^locked fileB\.txt at server1 for ann until .*; 2 updates held so far$/);
    expect(lockJson({ lock: lock(), index: 1, exitCode: 0 })).toEqual({ ...lock(), index: 1 });
  });

  it('says what became of the held updates, or that the unlock goes on by itself', () => {
    const r = (answer: UnlockResult['answer'], extra: Partial<UnlockResult> = {}): UnlockResult => ({ answer, lock: lock({ holder: 'bob' }), forced: false, waited: false, exitCode: 0, ...extra });
    const d = { key: 'fileB.txt', store: 'server1' };
    expect(describeUnlocked(r({ ...d, applied: 1, total: 1, done: true }, { index: 2 })).out).toEqual(['unlocked fileB.txt (#2) at server1: 1 held update applied']);
    expect(describeUnlocked(r({ ...d, applied: 0, total: 0, done: true })).out).toEqual(['unlocked fileB.txt at server1: no held updates']);
    expect(describeUnlocked(r({ ...d, applied: 1, total: 3, done: true, discarded: 2 }, { forced: true })).out).toEqual(["unlocked fileB.txt at server1, bob's lock taken over: 2 held updates dropped"]);
    expect(describeUnlocked(r({ ...d, applied: 40, total: 500, done: false }))).toEqual({
      out: ['unlocking fileB.txt at server1 goes on by itself: 40 of 500 held updates applied so far'],
      err: ['dfs locks shows how far it got; dfs watch shows each update as it is applied'],
    });
    expect(unlockJson(r({ ...d, applied: 2, total: 2, done: true }, { forced: true, waited: true, index: 0 }))).toEqual({ ...d, applied: 2, total: 2, done: true, holder: 'bob', forced: true, waited: true, index: 0 });
  });

  it('tabulates the locks, marking expired ones and unlocks under way', () => {
    const now = Date.parse('2024-05-01T10:30:00.000Z');
    const lines = lockTable([lock({ reason: 'editing\nnow', next: 4, applied: 1 }), lock({ key: 'a', store: 'server2', expires: now - 1, draining: { by: 'ann', since: 's' } })], now);
    expect(lines.map((l) => l.replace(/\d\d:\d\d/g, 'HH:MM'))).toEqual([
      'NAME       STORE    HOLDER  SINCE             EXPIRES                     HELD           REASON',
      'fileB.txt  server1  ann     2024-05-01 HH:MM  2024-05-01 HH:MM            2              editing\\u000anow',
      'a          server2  ann     2024-05-01 HH:MM  2024-05-01 HH:MM (expired)  0 (unlocking)',
    ]);
    expect(lockTable([])).toEqual([]);
  });
});

describe('describePut and describeRm', () => {
  const put = (results: PutResult['results'], extra: Partial<PutResult> = {}): PutResult => ({
    file: 'fileA.txt', key: 'fileA.txt', size: 40, mtime: '2024-05-01T10:00:00.000Z', via: 'inline', results, exitCode: 0, ...extra,
  });

  it('says where the file went in one line when every store took it', () => {
    expect(describePut(put([{ store: 'server1', ok: true }, { store: 'server2', ok: true }]), 'all')).toEqual({ out: ['stored fileA.txt (40 B) on server1, server2'], err: [] });
    expect(describePut(put([{ store: 'server1', ok: true }], { file: '/tmp/x.txt' }), 'server1').out).toEqual([
      'stored /tmp/x.txt as fileA.txt (40 B) on server1; replication copies it to the other stores',
    ]);
  });

  it("says which stores hold the write back in a lock's queue", () => {
    expect(describePut(put([{ store: 'server1', ok: true, held: 3 }, { store: 'server2', ok: true, etag: 'e' }]), 'all')).toEqual({
      out: ['stored fileA.txt (40 B) on server2', "held it for server1, locked by someone else: update #3 of the lock's queue, applied at unlock"],
      err: [],
    });
    expect(describePut(put([{ store: 'server1', ok: true, held: 1 }]), 'server1')).toEqual({
      out: ["held fileA.txt (40 B) for server1, locked by someone else: update #1 of the lock's queue, applied at unlock"],
      err: [],
    });
  });

  it('names each store that failed, and the parts of a multipart upload', () => {
    const multipart = { partSize: 8 << 20, parts: 3, uploads: [], aborted: ['server2'], abortFailed: ['server3'] };
    expect(describePut(put([{ store: 'server1', ok: true }, { store: 'server2', ok: false, error: 'part 2 of 3 failed' }, { store: 'server3', ok: false }], { size: 20 << 20, multipart }), 'all')).toEqual({
      out: ['stored fileA.txt (20.0 MiB, 3 parts) on server1'],
      err: [
        'dfs: not stored on server2: part 2 of 3 failed',
        'dfs: not stored on server3: failed',
        'dfs: replication or dfs sync copies it to server2, server3 once reachable; or run dfs put again',
        'dfs: warning: could not abort the upload on server3; its parts stay in the bucket until aborted (upload ids: dfs put --json)',
      ],
    });
    expect(describePut(put([{ store: 'server1', ok: false, error: 'x' }]), 'all')).toEqual({
      out: [],
      err: ['dfs: fileA.txt (40 B) was stored on no store', 'dfs: not stored on server1: x'],
    });
  });

  it('says which stores a delete reached', () => {
    const answer = { key: 'a', results: [{ store: 'server1', ok: true }, { store: 'server2', ok: false, error: 'unavailable' }] };
    expect(describeRm('a', { answer, exitCode: 6 })).toEqual({ out: ['deleted a from server1'], err: ['dfs: not deleted from server2: unavailable'] });
    expect(describeRm('a', { answer: { key: 'a', results: [{ store: 'server1', ok: false }] }, exitCode: 5 }).err).toEqual([
      'dfs: a was deleted from no store',
      'dfs: not deleted from server1: failed',
    ]);
  });
});
