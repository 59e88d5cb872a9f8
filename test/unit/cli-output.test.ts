import type { ReadAnswer } from '../../lib/types';
import { CliError } from '../../cli/exit';
import type { GetResult } from '../../cli/get';
import { clean, describeGet, errorJson, formatTime, getJson } from '../../cli/output';
import { formatBytes } from '../../cli/progress';
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
      err: ['warning: server3 did not answer; the result covers only the stores that did'],
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
