import { EXIT, EXIT_HELP, errorForResponse, exitForAnswer, exitForResults, writeAnswerOf } from '../../cli/exit';
import { readAnswerOf } from '../../cli/get';

describe('exitForAnswer', () => {
  it('maps each read status to its code', () => {
    expect(exitForAnswer('SINGLE')).toBe(0);
    expect(exitForAnswer('DIFFERENT')).toBe(4);
    expect(exitForAnswer('DIFFERENT', true)).toBe(0);
    expect(exitForAnswer('NOT_FOUND')).toBe(3);
  });

  it('documents every code in the help text', () => {
    for (const code of Object.values(EXIT)) expect(EXIT_HELP).toMatch(new RegExp(`^  ${code}  `, 'm'));
  });
});

describe('errorForResponse', () => {
  it.each([
    [400, { error: 'InvalidKey', message: 'key is empty' }, 2, 'InvalidKey', 'key is empty'],
    [503, { error: 'Unavailable', message: 'x', unavailable: ['server1'] }, 5, 'Unavailable', 'no store answered (server1); nothing can be said about this file'],
    [500, { error: 'Internal' }, 1, 'Internal', 'the server failed (500 Internal)'],
    [502, 'Bad Gateway', 1, 'Http502', 'the server failed (502 Http502)'],
    [401, { error: 'Unauthorized', message: 'no token' }, 1, 'Unauthorized', 'the server refused the request (401 Unauthorized): no token'],
    [404, { error: 'NotFound', message: 'no route for GET /filez/a' }, 1, 'NotFound', expect.stringContaining('is the endpoint the dfs API?')],
  ])('maps %i %j to exit %i', (status, body, exitCode, code, message) => {
    expect(errorForResponse(status, body)).toMatchObject({ exitCode, code, message });
  });

  it('keeps the unavailable stores of a 503 for --json', () => {
    expect(errorForResponse(503, { error: 'Unavailable', unavailable: ['server1', 'server2'] }).details).toEqual({ unavailable: ['server1', 'server2'] });
  });
});

describe('readAnswerOf', () => {
  it('returns SINGLE and DIFFERENT answers of a 200, and NOT_FOUND of a 404', () => {
    expect(readAnswerOf({ status: 200, body: { status: 'SINGLE', key: 'a', copies: [], unavailable: [] } }).status).toBe('SINGLE');
    expect(readAnswerOf({ status: 200, body: { status: 'DIFFERENT', key: 'a', versions: [], unavailable: [] } }).status).toBe('DIFFERENT');
    expect(readAnswerOf({ status: 404, body: { status: 'NOT_FOUND', key: 'a' } })).toEqual({ status: 'NOT_FOUND', key: 'a', unavailable: [] });
  });

  it('turns other replies into errors', () => {
    expect(() => readAnswerOf({ status: 404, body: { error: 'NotFound' } })).toThrow(expect.objectContaining({ exitCode: 1 }));
    expect(() => readAnswerOf({ status: 200, body: { hello: 'world' } })).toThrow(expect.objectContaining({ exitCode: 1, code: 'BadResponse' }));
    expect(() => readAnswerOf({ status: 400, body: { error: 'InvalidKey', message: 'm' } })).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});

describe('writeAnswerOf', () => {
  const results = [{ store: 'server1', ok: true }, { store: 'server2', ok: false, error: 'x' }];

  it('returns the per-store answer of a 200, 207 or 503', () => {
    for (const status of [200, 207, 503]) expect(writeAnswerOf({ status, body: { key: 'a', results } }, 'n').results).toEqual(results);
  });

  it('turns a 503 without results, and other statuses, into their error', () => {
    expect(() => writeAnswerOf({ status: 503, body: { error: 'Unavailable', unavailable: ['server1'] } }, 'nothing was deleted')).toThrow(
      expect.objectContaining({ exitCode: 5, message: 'no store answered (server1); nothing was deleted' }),
    );
    expect(() => writeAnswerOf({ status: 400, body: { error: 'InvalidKey', message: 'm' } }, 'n')).toThrow(expect.objectContaining({ exitCode: 2 }));
    expect(() => writeAnswerOf({ status: 200, body: { key: 'a' } }, 'n')).toThrow(expect.objectContaining({ exitCode: 1, code: 'BadResponse' }));
    expect(() => writeAnswerOf({ status: 200, body: { results: [{ ok: true }] } }, 'n')).toThrow(expect.objectContaining({ code: 'BadResponse' }));
  });
});

describe('exitForResults', () => {
  it('is 0 when every store took the change, 6 when some did, 5 when none did', () => {
    expect(exitForResults([{ store: 'a', ok: true }, { store: 'b', ok: true }])).toBe(EXIT.ok);
    expect(exitForResults([{ store: 'a', ok: true }, { store: 'b', ok: false }])).toBe(EXIT.partial);
    expect(exitForResults([{ store: 'a', ok: false }])).toBe(EXIT.unavailable);
    expect(exitForResults([])).toBe(EXIT.unavailable);
  });
});
