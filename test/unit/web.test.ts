import { AnswerError } from '../../client/answers';
import { UploadAborted, UploadInterrupted } from '../../client/multipart';
import { formatSize, formatTime, tokenName, versionFileName } from '../../web/format';
import { filterRows, nextSort, pageOf, rowsOf, sortRows, storesOf } from '../../web/table';
import { errorWords, isSignedOut, outcomeWords } from '../../web/words';
import type { FileEntry, LockInfo } from '../../client/answers';

const entry = (name: string, size: number, mtime: string): FileEntry => ({ name, size, mtime, state: 'same', stores: { server1: { size, etag: 'e', mtime }, server2: null } });
const FILES = [entry('a.txt', 30, '2026-01-03T00:00:00Z'), entry('B.txt', 10, '2026-01-01T00:00:00Z'), entry('c.txt', 10, '2026-01-02T00:00:00Z')];
const LOCK: LockInfo = { key: 'B.txt', store: 'server1', holder: 'bob', since: '2026-01-01T10:00:00.000Z', expires: 0, next: 1, applied: 0 };
const refusal = (status: number, body: unknown) => new AnswerError('refused', status, body, (body as { message?: string }).message ?? `the server answered ${status}`);

describe('the listing as the page shows it', () => {
  const rows = rowsOf(FILES, [LOCK]);

  it('numbers rows by their place in the name-sorted listing and attaches their locks', () => {
    expect(rows.map((r) => [r.index, r.name, r.locks.length])).toEqual([[0, 'a.txt', 0], [1, 'B.txt', 1], [2, 'c.txt', 0]]);
  });

  it('filters by name ignoring case, keeping each row\'s index', () => {
    expect(filterRows(rows, ' b.T ').map((r) => r.index)).toEqual([1]);
    expect(filterRows(rows, '   ')).toBe(rows);
  });

  it('sorts by size and time both ways, ties in name order', () => {
    expect(sortRows(rows, { key: 'size', descending: false }).map((r) => r.name)).toEqual(['B.txt', 'c.txt', 'a.txt']);
    expect(sortRows(rows, { key: 'size', descending: true }).map((r) => r.name)).toEqual(['a.txt', 'c.txt', 'B.txt']);
    expect(sortRows(rows, { key: 'mtime', descending: false }).map((r) => r.name)).toEqual(['B.txt', 'c.txt', 'a.txt']);
    expect(nextSort({ key: 'size', descending: false }, 'size')).toEqual({ key: 'size', descending: true });
    expect(nextSort({ key: 'size', descending: true }, 'name')).toEqual({ key: 'name', descending: false });
  });

  it('cuts pages and clamps a page past the end', () => {
    const many = Array.from({ length: 250 }, (_, i) => i);
    expect(pageOf(many, 2)).toEqual({ rows: many.slice(200), page: 2, pages: 3 });
    expect(pageOf(many, 9).page).toBe(2);
    expect(pageOf([], 0)).toEqual({ rows: [], page: 0, pages: 1 });
  });

  it('names every store, those that did not answer too', () => {
    expect(storesOf(FILES, ['server3'])).toEqual(['server1', 'server2', 'server3']);
  });
});

describe('the page\'s words', () => {
  it('writes sizes, times and the file names of versions as dfs does', () => {
    expect([formatSize(39), formatSize(1536), formatSize(6 * 1024 * 1024), formatSize(300 * 1024)]).toEqual(['39 B', '1.5 KiB', '6.0 MiB', '300 KiB']);
    expect(formatTime('2026-03-04T10:05:07.123Z')).toBe('2026-03-04 10:05:07');
    expect(formatTime('nonsense')).toBe('');
    expect(versionFileName('docs/fileB.txt', 'server2')).toBe('fileB.server2.txt');
    expect(versionFileName('Makefile', 'server1')).toBe('Makefile.server1');
    expect(tokenName(`dfs_alice_${'x'.repeat(43)}`)).toBe('alice');
    expect(tokenName('dfs_alice_short')).toBeUndefined();
  });

  it('says what a refusal means: not signed in, invalid name, the lock\'s holder and since, a store unavailable', () => {
    const unauthorized = refusal(401, { error: 'Unauthorized', message: 'a valid token is required' });
    expect(isSignedOut(unauthorized)).toBe(true);
    expect(errorWords(unauthorized)).toBe('not signed in: the server did not accept the token. Sign in with a valid token.');
    expect(errorWords(refusal(400, { error: 'InvalidKey', message: 'key ends with "/"' }), 'Uploading a/')).toBe('Uploading a/ failed: invalid name: key ends with "/"');
    expect(errorWords(refusal(409, { error: 'LockHeld', message: 'locked', holder: 'bob', since: '2026-01-01T10:00:00.000Z' }))).toBe('the file is locked by bob since 2026-01-01 10:00:00 UTC.');
    expect(errorWords(new AnswerError('refused', 503, { error: 'Unavailable', message: 'no store answered (server1, server2)', unavailable: ['server1', 'server2'] }, 'no store answered (server1, server2)', 'nothing was stored'))).toBe(
      'store unavailable (server1, server2): no store answered (server1, server2); nothing was stored.',
    );
    expect(errorWords(new AnswerError('malformed', 200, '<html>', 'not a listing'))).toMatch(/^the server answered with something the page does not understand/);
    expect(errorWords(new TypeError('Failed to fetch'))).toBe('the API could not be reached. Check the connection and try again.');
    expect(isSignedOut(new TypeError('x'))).toBe(false);
  });

  it('says whether an interrupted or failed upload stored anything', () => {
    const report = { partSize: 1, parts: 1, uploads: [], aborted: [], abortFailed: [] };
    expect(errorWords(new UploadInterrupted(), 'Uploading big.bin')).toBe('Uploading big.bin was cancelled; nothing was stored.');
    expect(errorWords(new UploadAborted(new TypeError('x'), 'parts', report), 'Uploading big.bin')).toBe(
      'Uploading big.bin failed: the API could not be reached. Check the connection and try again. (nothing was stored).',
    );
    expect(errorWords(new UploadAborted(new Error('lost'), 'complete', report))).toMatch(/may or may not be stored/);
  });

  it('says what each store did with a write', () => {
    expect(outcomeWords([{ store: 'server1', ok: true }, { store: 'server2', ok: true }])).toEqual({ text: 'stored on server1, server2', ok: true });
    expect(outcomeWords([{ store: 'server1', ok: true, held: 3 }, { store: 'server2', ok: false, error: 'no answer' }], 'deleted')).toEqual({
      text: "not deleted anywhere; server1 holds it in its lock's queue (#3); server2: no answer",
      ok: false,
    });
  });
});
