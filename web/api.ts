/**
 * The page's transport: client/routes.ts operations sent with fetch, same origin, the token of
 * this tab (sessionStorage: gone when the tab closes, never shared with other tabs). Parts of a
 * multipart upload go straight to the stores' presigned URLs (the buckets' CORS lets this
 * origin PUT and read the ETag).
 */
import { routeOf, type ApiOp, type ApiResult, type ApiSender } from '../client/routes';
import type { PartSender, PartSource } from '../client/multipart';

const TOKEN_KEY = 's3-dfs.token';

export const session = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token: string) => sessionStorage.setItem(TOKEN_KEY, token.trim()),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Paths resolve against the page's own address, so the page also works below a base path. */
const urlOf = (path: string) => new URL(path.replace(/^\//, ''), document.baseURI);

/** The API's answer: its status, and its body as JSON (the text when it is not JSON, which the guards call malformed). */
export function pageApi(token: string): ApiSender<ApiOp> {
  return {
    async send(op: ApiOp, opts?: { signal?: AbortSignal }): Promise<ApiResult> {
      const r = routeOf(op);
      const res = await fetch(urlOf(r.path), {
        method: r.method,
        headers: { ...r.headers, authorization: `Bearer ${token}` },
        ...(r.body ? { body: r.body as Uint8Array<ArrayBuffer> } : {}),
        ...(opts?.signal ? { signal: opts.signal } : {}),
        cache: 'no-store',
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        // left as text: a guard reports it as an unexpected answer
      }
      return { status: res.status, body };
    },
  };
}

/** One part to its presigned URL; the ETag comes back through the bucket's CORS ExposeHeaders. */
export const sendPart: PartSender<Blob> = async (url, body, signal) => {
  let res: Response;
  try {
    res = await fetch(url, { method: 'PUT', body, signal });
  } catch (err) {
    if (signal.aborted) throw err;
    return { ok: false, why: 'the store could not be reached' };
  }
  const etag = res.headers.get('etag');
  if (res.ok && etag) return { ok: true, etag };
  return { ok: false, status: res.status, why: res.ok ? 'the store sent no ETag the page may read (the bucket needs CORS exposing ETag)' : `the store answered ${res.status}` };
};

/** A File as parts: slices, read by the browser only when sent. */
export function fileSource(file: File): PartSource<Blob> {
  const { lastModified, size } = file;
  return {
    size,
    readPart: async (_n, position, length) => file.slice(position, position + length),
    // A file changed on disk while it was sent would be stored half old, half new.
    verify: async () => {
      if (file.lastModified !== lastModified) throw new Error(`${file.name} changed while it was sent`);
    },
  };
}

/** Hands `bytes` to the browser as a download named `name`. */
export function saveAs(bytes: Blob, name: string): void {
  const url = URL.createObjectURL(bytes);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
