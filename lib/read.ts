import type { Deps } from './deps';
import { AllStoresUnavailableError, StoreUnavailableError } from './errors';
import { ChangedWhileReadingError, getBytes, groupByContent, type ContentGroup } from './compare';
import { askEvery, bareEtag, getObject, headObject, onStore, presignGet, readBody, storeNamed, type ObjectHead, type Store } from './stores';
import type { Content, CopyInfo, ReadAnswer, VersionInfo } from './types';

export interface ReadOptions {
  /** Answer without any `content`: no body is read unless bytes must be compared. */
  meta?: boolean;
}

/** A store's answer to the first probe: its head (null = does not hold the key) and maybe its bytes. */
interface Probe {
  head: ObjectHead | null;
  body?: Buffer;
}

/** Whole bodies in hand, by store: each copy is read at most once per answer. */
type Bodies = Map<string, Buffer>;

/**
 * Reads `key` from every store and compares the copies (DESIGN.md "Read semantics").
 *
 * One round trip for identical copies: the first store gets a GET whose headers stand in
 * for its HEAD and whose body, when small enough to inline, is the answer's content; the
 * others get a HEAD at the same moment. Bodies of other versions are read only if needed, and
 * no copy twice: a body in hand (the first store's, or one read whole to compare it) is what
 * the others are compared with and what the answer carries.
 *
 * Returns SINGLE, DIFFERENT or NOT_FOUND with the stores that did not answer in
 * `unavailable`; throws AllStoresUnavailableError when none answered.
 */
export async function readFile(deps: Deps, key: string, opts: ReadOptions = {}): Promise<ReadAnswer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readOnce(deps, key, opts);
    } catch (err) {
      // A copy replaced between its HEAD and the read of its body: a fresh look sees the new state.
      if (!(err instanceof ChangedWhileReadingError) || attempt === READ_ATTEMPTS) throw err;
    }
  }
}

/** Looks at a key under constant rewriting give up, as ChangedWhileReadingError (409), after this many. */
const READ_ATTEMPTS = 3;

async function readOnce(deps: Deps, key: string, opts: ReadOptions): Promise<ReadAnswer> {
  const first = deps.stores[0];
  const { answers: probes, unavailable } = await askEvery(deps.stores, (store): Promise<Probe> =>
    store === first && !opts.meta ? probeWithGet(deps, store, key) : headObject(store, key).then((head) => ({ head })),
  );
  if (probes.size === 0) throw new AllStoresUnavailableError(unavailable);

  let present: ObjectHead[] = [...probes.values()].flatMap((p) => (p.head ? [p.head] : []));
  if (present.length === 0) return { status: 'NOT_FOUND', key, unavailable };
  const bodies: Bodies = new Map([...probes].flatMap(([store, p]) => (p.body ? [[store, p.body] as const] : [])));

  for (;;) {
    try {
      return await answer(deps, key, opts, present, bodies, unavailable);
    } catch (err) {
      // A store that fails halfway through a byte compare or a body read is unavailable,
      // not different: drop it and decide again from the others.
      if (!(err instanceof StoreUnavailableError)) throw err;
      unavailable.push(err.store);
      present = present.filter((h) => h.store !== err.store);
      if (present.length === 0) throw new AllStoresUnavailableError(unavailable);
    }
  }
}

async function answer(
  deps: Deps,
  key: string,
  opts: ReadOptions,
  present: ObjectHead[],
  bodies: Bodies,
  unavailable: string[],
): Promise<ReadAnswer> {
  // Copies small enough to inline are read whole to compare them, since the answer carries them;
  // others (and every copy of a meta read) are streamed against each other and dropped.
  const keepWhole = (size: number) => !opts.meta && size <= deps.inlineLimit;
  const groups = await groupByContent(deps, key, present, { bodies, keepWhole });
  const budget = { left: opts.meta ? 0 : deps.inlineLimit };
  const contentOf = (g: ContentGroup) => (opts.meta ? undefined : loadContent(deps, key, g, bodies, budget));

  if (groups.length === 1) {
    const group = groups[0]!;
    const content = await contentOf(group);
    return {
      status: 'SINGLE',
      key,
      copies: group.heads.map(copyInfo),
      ...(content ? { content } : {}),
      unavailable,
    };
  }

  const newest = pickNewest(groups);
  const versions: VersionInfo[] = [];
  for (const g of groups) {
    const rep = g.heads[0]!;
    const content = await contentOf(g);
    versions.push({
      stores: g.heads.map((h) => h.store),
      size: rep.size,
      etag: bareEtag(rep.etag),
      mtime: new Date(maxMtime(g)).toISOString(),
      newest: g === newest,
      ...(content ? { content } : {}),
    });
  }
  return { status: 'DIFFERENT', key, versions, unavailable };
}

/**
 * GETs the whole object, keeping the body only when it fits the inline budget; a larger
 * body is dropped unread (the connection is closed) and served by presigned URL instead.
 */
async function probeWithGet(deps: Deps, store: Store, key: string): Promise<Probe> {
  const res = await getObject(store, key);
  if (!res) return { head: null };
  const head = res.head;
  if (head.size > deps.inlineLimit) {
    res.body?.destroy();
    return { head };
  }
  const body = await onStore(store, () => readBody(res.body, res.length));
  if (deps.meter) deps.meter.bodyBytes += body.length;
  return { head, body };
}

/** Inline bytes while the answer's budget lasts, else a presigned GET URL on a store of the group. */
async function loadContent(
  deps: Deps,
  key: string,
  group: ContentGroup,
  bodies: Bodies,
  budget: { left: number },
): Promise<Content> {
  const size = group.heads[0]!.size;
  const holders = group.heads.map((h) => h.store);
  if (size <= budget.left) {
    budget.left -= size;
    const fetched = holders.map((s) => bodies.get(s)).find((b) => b !== undefined);
    const body = fetched ?? (await fetchWhole(deps, key, group));
    return { base64: body.toString('base64') };
  }
  const store = storeNamed(deps.stores, holders[0]!);
  const url = await presignGet(store, key, deps.urlExpirySeconds);
  return { url, expires: new Date(Date.now() + deps.urlExpirySeconds * 1000).toISOString() };
}

/** Reads a small body from the first store of the group that serves it. */
async function fetchWhole(deps: Deps, key: string, group: ContentGroup): Promise<Buffer> {
  let lastError: unknown;
  for (const head of group.heads) {
    try {
      return await getBytes(deps, storeNamed(deps.stores, head.store), key, head);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

const maxMtime = (g: ContentGroup) => Math.max(...g.heads.map((h) => h.mtimeMs));

/** Exactly one newest version: latest logical mtime, ties going to the earlier store in the config. */
function pickNewest(groups: ContentGroup[]): ContentGroup {
  return groups.reduce((best, g) => (maxMtime(g) > maxMtime(best) ? g : best));
}

function copyInfo(h: ObjectHead): CopyInfo {
  return { store: h.store, size: h.size, etag: bareEtag(h.etag), mtime: new Date(h.mtimeMs).toISOString() };
}
