import type { ApiOp, ApiResult, Transport } from '../../cli/client';
import { describeTokenCreated, describeTokenRevoked, tokenTable } from '../../cli/output';
import { createToken, listTokens, revokeToken, tokensOf, TOKEN_NAME } from '../../cli/token';

const SECRET = 'dfs_ann_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const INFO = { name: 'ann', scope: 'write' as const, created: '2024-05-01T12:00:00.000Z', createdBy: 'local' };

/** A transport answering every op with `reply`, recording the ops; `connects` counts connect() calls. */
function fakeApi(reply: ApiResult) {
  const ops: ApiOp[] = [];
  let connects = 0;
  const api: Transport = {
    async send(op) {
      ops.push(op);
      return reply;
    },
  };
  return {
    ops,
    connects: () => connects,
    connect: () => {
      connects += 1;
      return api;
    },
  };
}

const BAD_NAMES: Array<[string, string]> = [
  ['empty', ''],
  ['upper case', 'Ann'],
  ['a leading "-"', '-ann'],
  ['a space', 'a n'],
  ['an underscore (the token\'s separator)', 'a_n'],
  ['41 characters', 'a'.repeat(41)],
  ['a slash', 'a/b'],
];

describe('TOKEN_NAME', () => {
  it('takes 1 to 40 of a-z, 0-9 and "-", starting with a letter or digit', () => {
    for (const ok of ['a', '0', 'ann', 'ci-2', 'a'.repeat(40)]) expect(TOKEN_NAME.test(ok)).toBe(true);
    for (const [, bad] of BAD_NAMES) expect(TOKEN_NAME.test(bad)).toBe(false);
  });
});

describe('createToken', () => {
  it('posts the name and scope and returns the answer with the token', async () => {
    const api = fakeApi({ status: 201, body: { ...INFO, token: SECRET, extra: 1 } });
    await expect(createToken(api.connect, { name: 'ann', scope: 'write' })).resolves.toEqual({ answer: { ...INFO, token: SECRET }, exitCode: 0 });
    expect(api.ops).toEqual([{ op: 'createToken', name: 'ann', scope: 'write' }]);
  });

  it.each(BAD_NAMES)('refuses a name with %s as usage, before connecting', async (_what, name) => {
    const api = fakeApi({ status: 201, body: {} });
    await expect(createToken(api.connect, { name, scope: 'read' })).rejects.toMatchObject({ exitCode: 2, code: 'InvalidTokenName', message: expect.stringContaining('invalid token name') });
    expect(api.connects()).toBe(0);
  });

  it('reports a taken name (409) as exit 1 with the server\'s words', async () => {
    const api = fakeApi({ status: 409, body: { error: 'Conflict', message: 'a token named "ann" exists; revoke it first, or choose another name' } });
    await expect(createToken(api.connect, { name: 'ann', scope: 'write' })).rejects.toMatchObject({
      exitCode: 1,
      code: 'Conflict',
      message: 'the server refused the request (409 Conflict): a token named "ann" exists; revoke it first, or choose another name',
    });
  });

  it('maps a read token\'s 403 to exit 8', async () => {
    const api = fakeApi({ status: 403, body: { error: 'Forbidden', message: 'token "ro" is read-only; this needs a write token' } });
    await expect(createToken(api.connect, { name: 'ann', scope: 'write' })).rejects.toMatchObject({ exitCode: 8, code: 'Forbidden' });
  });

  it('refuses an answer without the token', async () => {
    for (const body of [INFO, { ...INFO, token: '' }, { token: SECRET }, null]) {
      await expect(createToken(fakeApi({ status: 201, body }).connect, { name: 'ann', scope: 'write' })).rejects.toMatchObject({ exitCode: 1, code: 'BadResponse' });
    }
  });
});

describe('listTokens', () => {
  it('returns the tokens, keeping only their known fields', async () => {
    const api = fakeApi({ status: 200, body: { tokens: [{ ...INFO, hash: 'never shown' }] } });
    await expect(listTokens(api.connect)).resolves.toEqual({ answer: { tokens: [INFO] }, exitCode: 0 });
    expect(api.ops).toEqual([{ op: 'listTokens' }]);
  });

  it('refuses what is not a list of tokens, and maps refusals', () => {
    expect(() => tokensOf({ status: 200, body: { tokens: [{ name: 'a', scope: 'admin', created: 'x', createdBy: 'y' }] } })).toThrow(expect.objectContaining({ code: 'BadResponse' }));
    expect(() => tokensOf({ status: 200, body: {} })).toThrow(expect.objectContaining({ code: 'BadResponse' }));
    expect(() => tokensOf({ status: 401, body: { error: 'Unauthorized', message: 'm' } })).toThrow(expect.objectContaining({ exitCode: 8 }));
  });
});

describe('revokeToken', () => {
  const revoked = { status: 200, body: { revoked: 'ann' } };

  it('revokes with -y without asking', async () => {
    const api = fakeApi(revoked);
    const confirm = jest.fn(async () => false);
    await expect(revokeToken(api.connect, { name: 'ann', yes: true }, { confirm })).resolves.toEqual({ answer: { revoked: 'ann' }, exitCode: 0 });
    expect(confirm).not.toHaveBeenCalled();
    expect(api.ops).toEqual([{ op: 'revokeToken', name: 'ann' }]);
  });

  it('asks on a terminal and sends nothing when the answer is no', async () => {
    const yes = fakeApi(revoked);
    const ask = jest.fn(async () => true);
    await expect(revokeToken(yes.connect, { name: 'ann', yes: false }, { confirm: ask })).resolves.toMatchObject({ exitCode: 0 });
    expect(ask).toHaveBeenCalledWith('revoke token ann? Whoever uses it is refused from then on [y/N] ');
    const no = fakeApi(revoked);
    await expect(revokeToken(no.connect, { name: 'ann', yes: false }, { confirm: async () => false })).rejects.toMatchObject({ exitCode: 1, code: 'Cancelled', message: 'token ann not revoked' });
    expect(no.connects()).toBe(0);
  });

  it('refuses without -y when there is no terminal, and a bad name, before connecting', async () => {
    const api = fakeApi(revoked);
    await expect(revokeToken(api.connect, { name: 'ann', yes: false }, {})).rejects.toMatchObject({ exitCode: 2, code: 'ConfirmationNeeded' });
    await expect(revokeToken(api.connect, { name: 'Ann', yes: true }, {})).rejects.toMatchObject({ exitCode: 2, code: 'InvalidTokenName' });
    expect(api.connects()).toBe(0);
  });

  it('exits 3 for the API\'s NotFound, and 1 for a 404 that is not the API\'s', async () => {
    await expect(revokeToken(fakeApi({ status: 404, body: { error: 'NotFound', message: 'no token named "ann"' } }).connect, { name: 'ann', yes: true }, {})).rejects.toMatchObject({
      exitCode: 3,
      message: 'no token named ann',
    });
    await expect(revokeToken(fakeApi({ status: 404, body: { message: 'Not Found' } }).connect, { name: 'ann', yes: true }, {})).rejects.toMatchObject({ exitCode: 1 });
  });

  it('refuses an answer that does not name the token revoked', async () => {
    await expect(revokeToken(fakeApi({ status: 200, body: { revoked: 'bob' } }).connect, { name: 'ann', yes: true }, {})).rejects.toMatchObject({ code: 'BadResponse' });
  });
});

describe('token output', () => {
  it('prints a new token alone on stdout and the words on stderr, without repeating it', () => {
    const lines = describeTokenCreated({ ...INFO, scope: 'read', token: SECRET }, '/home/u/.config/dfs/config.json');
    expect(lines.out).toEqual([SECRET]);
    expect(lines.err).toEqual([
      'created token ann (read-only); it is shown only now, above, and cannot be read back',
      'use it: export DFS_TOKEN=dfs_ann_… (the whole token), or put it as "token" in /home/u/.config/dfs/config.json (then chmod 600 it)',
    ]);
    expect(lines.err.join('\n')).not.toContain(SECRET);
  });

  it('lists tokens in aligned columns, escaping what the server sent', () => {
    expect(tokenTable([INFO, { name: 'dashboard', scope: 'read', created: '2024-05-02T08:30:00.000Z', createdBy: 'ann\u001b[31m' }])).toEqual([
      'NAME       SCOPE  CREATED               BY',
      'ann        write  2024-05-01 12:00:00Z  local',
      'dashboard  read   2024-05-02 08:30:00Z  ann\\u001b[31m',
    ]);
    expect(tokenTable([])).toEqual([]);
  });

  it('says a revoked token stops working', () => {
    expect(describeTokenRevoked('ann')).toEqual({ out: ['revoked token ann; requests with it are refused within seconds'], err: [] });
  });
});
