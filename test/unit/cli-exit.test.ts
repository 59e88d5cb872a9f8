import { EXIT, EXIT_HELP, errorForResponse, exitForAnswer, exitForResults, notAllowedError, writeAnswerOf } from '../../cli/exit';
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
    [401, { error: 'Unauthorized', message: 'no token' }, 8, 'Unauthorized', 'not signed in: no token; set DFS_TOKEN, or "token" in the config file (a write token can make one: dfs token create NAME)'],
    [403, { error: 'Forbidden', message: 'read-only' }, 8, 'Forbidden', 'not allowed: read-only'],
    [409, { error: 'Conflict', message: 'a token named "ann" exists' }, 1, 'Conflict', 'the server refused the request (409 Conflict): a token named "ann" exists'],
    [409, { error: 'LockHeld', message: 'a is locked at server1 by ann since t', holder: 'ann', since: 't' }, 7, 'LockHeld', 'a is locked at server1 by ann since t'],
    [409, { error: 'LockHeld' }, 7, 'LockHeld', 'locked by someone else'],
    [404, { error: 'NotFound', message: 'no route for GET /filez/a' }, 1, 'NotFound', expect.stringContaining('is the endpoint the dfs API?')],
  ])('maps %i %j to exit %i', (status, body, exitCode, code, message) => {
    expect(errorForResponse(status, body)).toMatchObject({ exitCode, code, message });
  });

  it('keeps the holder of a LockHeld for --json', () => {
    expect(errorForResponse(409, { error: 'LockHeld', message: 'm', holder: 'ann', since: 't' }).details).toEqual({ holder: 'ann', since: 't' });
  });

  it('keeps the unavailable stores of a 503 for --json', () => {
    expect(errorForResponse(503, { error: 'Unavailable', unavailable: ['server1', 'server2'] }).details).toEqual({ unavailable: ['server1', 'server2'] });
  });
});

describe('notAllowedError', () => {
  const HINT = 'set DFS_TOKEN, or "token" in /home/u/.config/dfs/config.json (a write token can make one: dfs token create NAME)';
  const unauthorized = { error: 'Unauthorized', message: 'the token is not valid: it was revoked, mistyped, or is for another stack' };

  it('maps a 401 without a token to exit 8, saying how to sign in', () => {
    const e = notAllowedError(401, { error: 'Unauthorized', message: 'this API needs a token' }, { configPath: '/home/u/.config/dfs/config.json' });
    expect(e).toMatchObject({ exitCode: EXIT.notAllowed, code: 'Unauthorized', details: {}, message: `not signed in: this API needs a token; ${HINT}` });
  });

  it('names where a refused token came from, in the message and for --json', () => {
    const e = notAllowedError(401, unauthorized, { tokenFrom: 'DFS_TOKEN', configPath: '/home/u/.config/dfs/config.json' });
    expect(e).toMatchObject({
      exitCode: 8,
      details: { tokenFrom: 'DFS_TOKEN' },
      message: `not signed in: the token from DFS_TOKEN was refused (${unauthorized.message}); ${HINT}`,
    });
  });

  it('says to restart the local stack when its token was refused', () => {
    const e = notAllowedError(401, unauthorized, { tokenFrom: '/repo/.dfs-data/local.json', fromLocalStack: true, configPath: '/home/u/.config/dfs/config.json' });
    expect(e.message).toBe(`not signed in: the token from /repo/.dfs-data/local.json was refused (${unauthorized.message}); restart the local stack (npm start) to renew it, or ${HINT}`);
  });

  it('maps a 403 to exit 8 with the server\'s reason, and the token\'s source when one was sent', () => {
    const body = { error: 'Forbidden', message: 'token "ann" is read-only; this needs a write token' };
    expect(notAllowedError(403, body)).toMatchObject({ exitCode: 8, code: 'Forbidden', details: {}, message: `not allowed: ${body.message}` });
    expect(notAllowedError(403, body, { tokenFrom: 'DFS_TOKEN' })).toMatchObject({ details: { tokenFrom: 'DFS_TOKEN' }, message: `not allowed: ${body.message} (the token from DFS_TOKEN)` });
  });

  it('copes with answers that are not the API\'s JSON', () => {
    expect(notAllowedError(401, undefined)).toMatchObject({ exitCode: 8, code: 'Unauthorized', message: expect.stringMatching(/^not signed in: the server wants a token \(401\); set DFS_TOKEN/) });
    expect(notAllowedError(403, 'Forbidden')).toMatchObject({ exitCode: 8, code: 'Forbidden', message: 'not allowed: the server refused the request (403)' });
  });

  it('is documented as exit 8', () => {
    expect(EXIT_HELP).toMatch(/^ {2}8 {2}not allowed: no token, or one the server refused/m);
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
