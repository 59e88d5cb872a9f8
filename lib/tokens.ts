import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Deps } from './deps';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, ObjectChangedError, UnauthorizedError } from './errors';
import { deleteRecord, listRecords, readRecord, writeRecord } from './control';
import { parseBody } from './validate';

/*
 * Who may do what. Every API route needs a bearer token: `dfs_<name>_<secret>`, the secret 256
 * random bits, shown once when the token is made. The control bucket keeps, under
 * `tokens/<name>`, only the secret's SHA-256 with the token's name and scope (`read` or
 * `write`), so a leaked bucket leaks no usable token. The name is the identity: the `who` of
 * stamps, tombstones, the journal and locks, never a request header.
 *
 * A token record is read per request, and kept CACHE_MS in the Lambda: a revoked token stops
 * working within that.
 */

export type Scope = 'read' | 'write';

/** Who a request is from, as the token (or IAM, for a direct invoke) says. */
export interface Identity {
  name: string;
  scope: Scope;
}

/** What `tokens/<name>` holds. */
interface TokenRecord {
  name: string;
  scope: Scope;
  /** SHA-256 of the secret, hex. */
  hash: string;
  created: string;
  createdBy: string;
}

/** A token as `GET /tokens` shows it: never its secret nor its hash. */
export interface TokenInfo {
  name: string;
  scope: Scope;
  created: string;
  createdBy: string;
}

const PREFIX = 'tokens/';
export const TOKEN_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
const TOKEN = /^dfs_([a-z0-9][a-z0-9-]{0,39})_([A-Za-z0-9_-]{43})$/;
const CACHE_MS = 10_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest();

const cache = new Map<string, { record: TokenRecord | null; at: number }>();
/** Names remembered at most: a caller sending made-up names cannot grow the Lambda's memory. */
const CACHE_SIZE = 1000;

async function recordOf(deps: Pick<Deps, 'control'>, name: string, now: number): Promise<TokenRecord | null> {
  const hit = cache.get(name);
  if (hit && now - hit.at < CACHE_MS) return hit.record;
  const record = (await readRecord<TokenRecord>(deps.control, PREFIX + name))?.value ?? null;
  if (cache.size >= CACHE_SIZE) cache.clear();
  cache.set(name, { record, at: now });
  return record;
}

/**
 * Who an `Authorization` header is from. Throws UnauthorizedError, saying only that the token
 * is missing or not valid (never which part was wrong), for anything but a live token.
 */
export async function authenticate(deps: Pick<Deps, 'control'>, header: string | undefined, now = Date.now()): Promise<Identity> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) throw new UnauthorizedError('this API needs a token: send "Authorization: Bearer <token>"');
  const t = TOKEN.exec(m[1]!);
  const record = t ? await recordOf(deps, t[1]!, now) : null;
  // Compared in constant time, and a hash is compared even for an unknown name.
  const given = sha256(t?.[2] ?? m[1]!);
  const expected = record ? Buffer.from(record.hash, 'hex') : sha256('no such token');
  if (!t || !record || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new UnauthorizedError('the token is not valid: it was revoked, mistyped, or is for another stack');
  }
  return { name: record.name, scope: record.scope };
}

/** Throws ForbiddenError unless `who` may do something needing `scope`. */
export function authorize(who: Identity, scope: Scope): void {
  if (scope === 'write' && who.scope !== 'write') throw new ForbiddenError(`token "${who.name}" is read-only; this needs a write token`);
}

/** Names the system records for itself: a token named so would pass for it in every stamp and journal entry. */
export const RESERVED_NAMES: readonly string[] = Object.freeze(['lambda-invoke', 'anonymous', 'api', 'replication', 'reconcile', 'seed', 'unknown']);

const createSchema = z.object({ name: z.string().regex(TOKEN_NAME, 'a token name is 1 to 40 of a-z, 0-9 and "-", starting with a letter or digit').refine((n) => !RESERVED_NAMES.includes(n), 'that name is the system\'s own'), scope: z.enum(['read', 'write']).optional() }).strict();

/**
 * Makes a token: its record goes to the control bucket only if no token has that name.
 * Returns the token itself, which is never stored nor shown again. Throws BadRequestError for a
 * bad name or scope, ConflictError when the name is taken.
 */
export async function createToken(deps: Pick<Deps, 'control'>, body: unknown, by: Identity, now = new Date()): Promise<TokenInfo & { token: string }> {
  const { name, scope = 'write' } = parseBody(createSchema, body);
  const secret = randomBytes(32).toString('base64url');
  const record: TokenRecord = { name, scope, hash: sha256(secret).toString('hex'), created: now.toISOString(), createdBy: by.name };
  try {
    await writeRecord(deps.control, PREFIX + name, record, null);
  } catch (err) {
    if (err instanceof ObjectChangedError) throw new ConflictError(`a token named "${name}" exists; revoke it first, or choose another name`);
    throw err;
  }
  cache.delete(name);
  return { name, scope, created: record.created, createdBy: record.createdBy, token: `dfs_${name}_${secret}` };
}

/** Every token's name, scope and making, sorted by name. */
export async function listTokens(deps: Pick<Deps, 'control'>): Promise<{ tokens: TokenInfo[] }> {
  const tokens: TokenInfo[] = [];
  for await (const r of listRecords(deps.control, PREFIX)) {
    const rec = (await readRecord<TokenRecord>(deps.control, r.key))?.value;
    if (rec) tokens.push({ name: rec.name, scope: rec.scope, created: rec.created, createdBy: rec.createdBy });
  }
  return { tokens };
}

/** Revokes a token: it stops working within CACHE_MS. Throws NotFoundError when there is none. */
export async function revokeToken(deps: Pick<Deps, 'control'>, name: string): Promise<{ revoked: string }> {
  if (!TOKEN_NAME.test(name)) throw new BadRequestError('a token name is 1 to 40 of a-z, 0-9 and "-"');
  if (!(await readRecord(deps.control, PREFIX + name))) throw new NotFoundError(`no token named "${name}"`);
  await deleteRecord(deps.control, PREFIX + name);
  cache.delete(name);
  return { revoked: name };
}

/** Forgets cached token records (tests, and a revocation that must count at once). */
export const forgetTokens = () => cache.clear();
