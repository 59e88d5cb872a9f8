import { createHash } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { authenticate, authorize, createToken, forgetTokens, listTokens, revokeToken, type Identity } from '../../lib/tokens';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, StoreUnavailableError, UnauthorizedError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import { handler } from '../../handlers/api';
import { logger } from '../../handlers/http';
import { testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError } from '../helpers/mock-s3';
import { makeDeps } from '../helpers/deps';
import { AUTH, READ_AUTH, TEST_TOKEN, apiEvent, putTestTokens, tokenRecord } from '../helpers/apigw';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

const client = testClient();
const { s3mock, fake } = useConditionalS3(client);
const deps = () => makeDeps([{ name: 'server1', bucket: 'bucket-1', s3: client }], { control: { bucket: 'control', s3: client } });
const ADMIN: Identity = { name: 'admin', scope: 'write' };
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

beforeEach(() => {
  forgetTokens();
  mockDeps = deps();
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** The token's record as stored, parsed. */
const stored = (name: string) => {
  const text = fake.textOf('control', `tokens/${name}`);
  return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
};
const secretOf = (token: string) => /^dfs_[a-z0-9-]+_(.+)$/.exec(token)![1]!;
/** Requests that changed something, in any bucket. */
const writes = () => s3mock.calls().filter((c) => c.args[0] instanceof PutObjectCommand || c.args[0] instanceof DeleteObjectCommand);

describe('createToken', () => {
  it('makes dfs_<name>_<secret> with a 256-bit base64url secret, and answers its info with the token', async () => {
    const made = await createToken(deps(), { name: 'ann', scope: 'read' }, ADMIN, new Date(T0));
    expect(made).toEqual({ name: 'ann', scope: 'read', created: new Date(T0).toISOString(), createdBy: 'admin', token: expect.stringMatching(/^dfs_ann_[A-Za-z0-9_-]{43}$/) });
    expect(Buffer.from(secretOf(made.token), 'base64url')).toHaveLength(32);
  });

  it('stores only the secret\'s SHA-256 with the name, scope and making, under tokens/<name>, if no token has the name', async () => {
    const made = await createToken(deps(), { name: 'ann' }, ADMIN, new Date(T0));
    const secret = secretOf(made.token);
    expect(stored('ann')).toEqual({ name: 'ann', scope: 'write', hash: sha256(secret), created: new Date(T0).toISOString(), createdBy: 'admin' });
    expect(fake.textOf('control', 'tokens/ann')).not.toContain(secret);
    expect(fake.writes).toEqual(['PutObject control/tokens/ann']);
    expect(s3mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: 'control', Key: 'tokens/ann', IfNoneMatch: '*' });
  });

  it('makes a different secret each time', async () => {
    const a = await createToken(deps(), { name: 'a' }, ADMIN);
    const b = await createToken(deps(), { name: 'b' }, ADMIN);
    expect(secretOf(a.token)).not.toBe(secretOf(b.token));
  });

  it('takes a name of 1 and of 40 characters, digits and "-" after the first', async () => {
    for (const name of ['a', '7', `a${'-'.repeat(38)}z`, 'ci-2026']) await expect(createToken(deps(), { name }, ADMIN)).resolves.toMatchObject({ name });
  });

  it('refuses an existing name with 409 Conflict, leaving its record as it was', async () => {
    await createToken(deps(), { name: 'ann', scope: 'read' }, ADMIN);
    const before = fake.textOf('control', 'tokens/ann');
    const err = await createToken(deps(), { name: 'ann', scope: 'write' }, ADMIN).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toBe('a token named "ann" exists; revoke it first, or choose another name');
    expect(fake.textOf('control', 'tokens/ann')).toBe(before);
  });

  it('refuses the name when another Lambda made it between, by If-None-Match and not a read before', async () => {
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'PutObject' && i.Key === 'tokens/ann' && !fake.has('control', 'tokens/ann')) fake.put('control', 'tokens/ann', tokenRecord(TEST_TOKEN.replace('tester', 'ann'), 'read'));
    });
    await expect(createToken(deps(), { name: 'ann' }, ADMIN)).rejects.toThrow(ConflictError);
    expect(stored('ann')).toMatchObject({ scope: 'read', createdBy: 'test' });
  });

  // `who` is how tombstones and stamps tell identities apart: handlers/http.ts records direct
  // invokes (IAM-gated, the operator's) as lambda-invoke and public requests as anonymous. A token
  // of either name would pass for them in every record it leaves.
  it.each([['lambda-invoke'], ['anonymous']])('refuses the name %s, which the API gives identities without a token', async (name) => {
    await expect(createToken(deps(), { name }, ADMIN)).rejects.toThrow(BadRequestError);
    expect(writes()).toEqual([]);
  });

  it.each([
    ['an uppercase name', { name: 'Ann' }],
    ['a name of 41 characters', { name: 'a'.repeat(41) }],
    ['a name starting with "-"', { name: '-ann' }],
    ['an empty name', { name: '' }],
    ['a name with "_" (the token\'s separator)', { name: 'a_b' }],
    ['a name with "/"', { name: 'x/../y' }],
    ['a name with a space', { name: 'a b' }],
    ['a non-ASCII name', { name: 'änn' }],
    ['a name that is not a string', { name: 7 }],
    ['no name', { scope: 'read' }],
    ['an unknown scope', { name: 'ann', scope: 'admin' }],
    ['an uppercase scope', { name: 'ann', scope: 'READ' }],
    ['an extra key', { name: 'ann', scope: 'read', admin: true }],
    ['a given secret', { name: 'ann', token: 'dfs_ann_mine' }],
    ['null', null],
    ['an array', [{ name: 'ann' }]],
    ['a string', 'ann'],
  ])('refuses %s with 400 BadRequest, writing nothing', async (_, body) => {
    await expect(createToken(deps(), body, ADMIN)).rejects.toThrow(BadRequestError);
    expect(writes()).toEqual([]);
  });
});

describe('listTokens', () => {
  it('lists every token\'s name, scope and making, by name, never its hash or secret', async () => {
    const b = await createToken(deps(), { name: 'bob', scope: 'read' }, ADMIN, new Date(T0));
    const a = await createToken(deps(), { name: 'ann' }, ADMIN, new Date(T0 + 1));
    const list = await listTokens(deps());
    expect(list).toEqual({
      tokens: [
        { name: 'ann', scope: 'write', created: new Date(T0 + 1).toISOString(), createdBy: 'admin' },
        { name: 'bob', scope: 'read', created: new Date(T0).toISOString(), createdBy: 'admin' },
      ],
    });
    const text = JSON.stringify(list);
    for (const t of [a, b]) {
      expect(text).not.toContain(secretOf(t.token));
      expect(text).not.toContain(sha256(secretOf(t.token)));
    }
    expect(text).not.toContain('hash');
  });

  it('lists none when there are none, reading only under tokens/', async () => {
    fake.put('control', 'tombstones/a.txt', '{"key":"a.txt"}');
    expect(await listTokens(deps())).toEqual({ tokens: [] });
    expect(s3mock.commandCalls(GetObjectCommand)).toEqual([]);
  });
});

describe('revokeToken', () => {
  it('deletes the record and answers the name', async () => {
    await createToken(deps(), { name: 'ann' }, ADMIN);
    expect(await revokeToken(deps(), 'ann')).toEqual({ revoked: 'ann' });
    expect(stored('ann')).toBeUndefined();
  });

  it('answers 404 NotFound when there is no such token, deleting nothing', async () => {
    await expect(revokeToken(deps(), 'nobody')).rejects.toThrow(NotFoundError);
    expect(writes()).toEqual([]);
  });

  it.each([['Ann'], ['a'.repeat(41)], ['-ann'], [''], ['../tombstones/a.txt'], ['ann/x']])('answers 400 BadRequest for the name %j, reading and deleting nothing', async (name) => {
    fake.put('control', 'tombstones/a.txt', '{}');
    await expect(revokeToken(deps(), name)).rejects.toThrow(BadRequestError);
    expect(s3mock.calls()).toEqual([]);
    expect(fake.has('control', 'tombstones/a.txt')).toBeDefined();
  });
});

describe('authenticate', () => {
  beforeEach(() => putTestTokens((key, text) => fake.put('control', key, text)));

  it('answers the token\'s name and scope', async () => {
    await expect(authenticate(deps(), AUTH)).resolves.toEqual({ name: 'tester', scope: 'write' });
    await expect(authenticate(deps(), READ_AUTH)).resolves.toEqual({ name: 'reader', scope: 'read' });
  });

  it('takes the scheme in any case and whitespace around the token', async () => {
    await expect(authenticate(deps(), `bearer ${TEST_TOKEN}`)).resolves.toMatchObject({ name: 'tester' });
    await expect(authenticate(deps(), `Bearer   ${TEST_TOKEN}  `)).resolves.toMatchObject({ name: 'tester' });
  });

  it('answers a made token at once', async () => {
    const made = await createToken(deps(), { name: 'ann', scope: 'read' }, ADMIN);
    await expect(authenticate(deps(), `Bearer ${made.token}`)).resolves.toEqual({ name: 'ann', scope: 'read' });
  });

  const NEEDS = 'this API needs a token: send "Authorization: Bearer <token>"';
  const INVALID = 'the token is not valid: it was revoked, mistyped, or is for another stack';

  it.each([
    ['no header', undefined, NEEDS],
    ['an empty header', '', NEEDS],
    ['"Bearer" alone', 'Bearer', NEEDS],
    ['a Basic header', `Basic ${Buffer.from('tester:x').toString('base64')}`, NEEDS],
    ['the token without a scheme', TEST_TOKEN, NEEDS],
    ['two tokens', `Bearer ${TEST_TOKEN} ${TEST_TOKEN}`, NEEDS],
    ['a token without the dfs_ prefix', `Bearer tester_${'A'.repeat(43)}`, INVALID],
    ['a secret one character short', `Bearer dfs_tester_${'A'.repeat(42)}`, INVALID],
    ['a secret one character long', `Bearer dfs_tester_${'A'.repeat(44)}`, INVALID],
    ['a secret outside base64url', `Bearer dfs_tester_${'A'.repeat(42)}=`, INVALID],
    ['an uppercase name', `Bearer dfs_Tester_${'A'.repeat(43)}`, INVALID],
    ['an empty name', `Bearer dfs__${'A'.repeat(43)}`, INVALID],
    ['an unknown name', `Bearer dfs_nobody_${'A'.repeat(43)}`, INVALID],
    ['a wrong secret', `Bearer dfs_tester_${'B'.repeat(43)}`, INVALID],
    ['another token\'s secret', `Bearer dfs_tester_${secretOf(`dfs_reader_${'B'.repeat(43)}`)}`, INVALID],
  ])('refuses %s with 401 Unauthorized, saying only that the token is missing or not valid', async (_, header, message) => {
    const err = await authenticate(deps(), header).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect(err).toMatchObject({ status: 401, code: 'Unauthorized', message });
  });

  it('reads no record for a token that is not one: nothing to look up', async () => {
    await expect(authenticate(deps(), `Bearer dfs_../tokens/tester_${'A'.repeat(43)}`)).rejects.toThrow(UnauthorizedError);
    expect(s3mock.calls()).toEqual([]);
  });

  it('refuses a record whose hash is not a SHA-256, without throwing anything else', async () => {
    fake.put('control', 'tokens/tester', JSON.stringify({ ...JSON.parse(tokenRecord(TEST_TOKEN, 'write')), hash: 'abcd' }));
    await expect(authenticate(deps(), AUTH)).rejects.toThrow(UnauthorizedError);
  });

  it('refuses a revoked token: at once in the Lambda that revoked it, in another once forgetTokens() clears the cache', async () => {
    await authenticate(deps(), AUTH);
    await revokeToken(deps(), 'tester');
    await expect(authenticate(deps(), AUTH)).rejects.toThrow(UnauthorizedError);

    // Revoked by another Lambda: the record is gone from under this one's cache.
    await authenticate(deps(), READ_AUTH);
    fake.delete('control', 'tokens/reader');
    forgetTokens();
    await expect(authenticate(deps(), READ_AUTH)).rejects.toThrow(UnauthorizedError);
  });

  it('keeps a record 10 s: a token revoked elsewhere still passes within them, not after', async () => {
    await authenticate(deps(), AUTH, T0);
    fake.delete('control', 'tokens/tester');
    await expect(authenticate(deps(), AUTH, T0 + 9_999)).resolves.toMatchObject({ name: 'tester' });
    expect(s3mock.commandCalls(GetObjectCommand)).toHaveLength(1);
    await expect(authenticate(deps(), AUTH, T0 + 10_000)).rejects.toThrow(UnauthorizedError);
    expect(s3mock.commandCalls(GetObjectCommand)).toHaveLength(2);
  });

  it('checks the secret against the cached record: a wrong secret fails within the 10 s too', async () => {
    await authenticate(deps(), AUTH, T0);
    await expect(authenticate(deps(), `Bearer dfs_tester_${'C'.repeat(43)}`, T0 + 1)).rejects.toThrow(UnauthorizedError);
  });

  it('keeps a miss 10 s as well: a token made by another Lambda passes from then on', async () => {
    const other = `dfs_ann_${'D'.repeat(43)}`;
    await expect(authenticate(deps(), `Bearer ${other}`, T0)).rejects.toThrow(UnauthorizedError);
    fake.put('control', 'tokens/ann', tokenRecord(other, 'write'));
    await expect(authenticate(deps(), `Bearer ${other}`, T0 + 9_999)).rejects.toThrow(UnauthorizedError);
    await expect(authenticate(deps(), `Bearer ${other}`, T0 + 10_000)).resolves.toMatchObject({ name: 'ann' });
  });

  it('throws StoreUnavailableError, not 401, when the control bucket does not answer', async () => {
    fake.fail('control', networkError);
    await expect(authenticate(deps(), AUTH)).rejects.toThrow(StoreUnavailableError);
  });
});

describe('authorize', () => {
  it('lets a write token do what needs read or write', () => {
    expect(() => authorize({ name: 'w', scope: 'write' }, 'read')).not.toThrow();
    expect(() => authorize({ name: 'w', scope: 'write' }, 'write')).not.toThrow();
  });

  it('lets a read token read, and refuses it a write with 403 Forbidden naming it', () => {
    expect(() => authorize({ name: 'r', scope: 'read' }, 'read')).not.toThrow();
    const err = (() => {
      try {
        authorize({ name: 'r', scope: 'read' }, 'write');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err).toMatchObject({ status: 403, code: 'Forbidden', message: 'token "r" is read-only; this needs a write token' });
  });
});

describe('token routes through the API', () => {
  beforeEach(async () => {
    await putTestTokens((key, text) => fake.put('control', key, text));
    jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
    jest.spyOn(logger, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  async function call(method: string, rawPath: string, opts: { body?: unknown; auth?: string | null } = {}) {
    const res = (await handler(
      apiEvent(method, rawPath, { ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}), ...(opts.auth !== undefined ? { auth: opts.auth } : {}) }),
    )) as APIGatewayProxyStructuredResultV2 & { body: string };
    return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
  }

  it('POST /tokens answers 201 with the token, made by the caller; it works at once', async () => {
    const res = await call('POST', '/tokens', { body: { name: 'ci', scope: 'read' } });
    expect(res).toEqual({ status: 201, body: { name: 'ci', scope: 'read', created: expect.any(String), createdBy: 'tester', token: expect.stringMatching(/^dfs_ci_/) } });
    expect((await call('GET', '/files/a.txt', { auth: `Bearer ${res.body.token as string}` })).status).toBe(404);
  });

  it('POST /tokens answers 409 for a name in use and 400 for a bad one', async () => {
    expect(await call('POST', '/tokens', { body: { name: 'reader' } })).toMatchObject({ status: 409, body: { error: 'Conflict' } });
    expect(await call('POST', '/tokens', { body: { name: 'Reader' } })).toMatchObject({ status: 400, body: { error: 'BadRequest' } });
  });

  it('GET /tokens lists them without hash or secret', async () => {
    const res = await call('GET', '/tokens');
    expect(res).toEqual({
      status: 200,
      body: { tokens: [{ name: 'reader', scope: 'read', created: expect.any(String), createdBy: 'test' }, { name: 'tester', scope: 'write', created: expect.any(String), createdBy: 'test' }] },
    });
  });

  it('DELETE /tokens/{name} revokes: 200, then 401 for that token; 404 for none; 400 for a bad name', async () => {
    expect(await call('DELETE', '/tokens/reader')).toEqual({ status: 200, body: { revoked: 'reader' } });
    expect(await call('GET', '/files/a.txt', { auth: READ_AUTH })).toMatchObject({ status: 401, body: { error: 'Unauthorized' } });
    expect(await call('DELETE', '/tokens/reader')).toMatchObject({ status: 404, body: { error: 'NotFound' } });
    expect(await call('DELETE', '/tokens/Reader')).toMatchObject({ status: 400, body: { error: 'BadRequest' } });
  });

  it('a token may revoke itself, and is refused from then on', async () => {
    expect(await call('DELETE', '/tokens/tester')).toEqual({ status: 200, body: { revoked: 'tester' } });
    expect(await call('GET', '/tokens')).toMatchObject({ status: 401 });
  });
});
