/**
 * The web page's own files as the API serves them (GET / and GET /assets/{name}): which file a
 * path names, its headers, and the page's Content-Security-Policy. The files are built into the
 * api function's bundle (infra/web-page.js); this module only picks and labels them.
 */
import { RouteNotFoundError } from './errors';
import { presignGet, type Store } from './stores';

/** One built file: its text, and the same bytes gzipped (base64) for clients that take gzip. */
export interface PageFile {
  type: string;
  text: string;
  gzip: string;
}

/** What infra/web-page.js builds: `index.html` and the hashed assets it names. */
export interface PageBundle {
  files: Record<string, PageFile>;
}

/** A file to send: its body as API Gateway takes it, and its headers. */
export interface PageAnswer {
  body: string;
  base64: boolean;
  headers: Record<string, string>;
}

export const INDEX = 'index.html';
/** Asset names carry their content's hash (`app.3FQ2K7ZD.js`): a changed file is a new name. */
const HASHED = /^[a-z]+\.[A-Z0-9]{8}\.(js|css)$/;

/**
 * The file `name` of `bundle` (`index.html` for GET /), gzipped when `acceptEncoding` takes gzip.
 * The index is revalidated on every load so a deploy shows at once; assets, hashed, are kept for
 * a year. Throws RouteNotFoundError for a name the bundle does not hold, and when this build
 * holds no page (under tsx or jest, which do not run the build plugin).
 */
export function pageFile(bundle: PageBundle | undefined, name: string, acceptEncoding = '', csp?: string): PageAnswer {
  if (!bundle) throw new RouteNotFoundError('this build of the API holds no web page (it is built by `sls package` and `sls offline`)');
  const file = Object.hasOwn(bundle.files, name) ? bundle.files[name] : undefined;
  if (!file) throw new RouteNotFoundError(`the page has no file ${JSON.stringify(name)}`);
  const gzip = /\bgzip\b/i.test(acceptEncoding);
  const headers: Record<string, string> = {
    'content-type': file.type,
    'cache-control': HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    vary: 'accept-encoding',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    ...(csp ? { 'content-security-policy': csp } : {}),
  };
  return gzip ? { body: file.gzip, base64: true, headers } : { body: file.text, base64: false, headers };
}

/** An asset named in the index (`app.3FQ2K7ZD.js`); nothing else is served under /assets/, the index included (it needs its policy). */
export function assetFile(bundle: PageBundle | undefined, name: string, acceptEncoding = ''): PageAnswer {
  if (!HASHED.test(name)) throw new RouteNotFoundError(`the page has no file ${JSON.stringify(name)}`);
  return pageFile(bundle, name, acceptEncoding);
}

/**
 * The page's policy: its own scripts and styles only, nothing inline, no frames, no plugins;
 * requests to the API (same origin) and to `storeOrigins`, where presigned URLs point (parts of
 * an upload go there, large downloads come from there).
 */
export function pageCsp(storeOrigins: string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self' ${[...new Set(storeOrigins)].join(' ')}`.trim(),
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

const origins = new WeakMap<Store[], Promise<string[]>>();

/**
 * The origins the stores' presigned URLs point to, found by signing one (no request is sent):
 * whatever endpoint, region or addressing style the SDK picks, the policy names exactly it.
 * Signed once per list of stores, i.e. once per cold start.
 */
export function storeOrigins(stores: Store[]): Promise<string[]> {
  let found = origins.get(stores);
  if (!found) {
    found = Promise.all(stores.map(async (s) => new URL(await presignGet(s, 'page-csp', 60)).origin));
    found.catch(() => origins.delete(stores));
    origins.set(stores, found);
  }
  return found;
}
