/**
 * Is a local file the same as a stored version? Cheapest evidence first, as the server decides
 * between stores: sizes, then the bytes when they came inline, then the MD5 of the file against
 * a single-part ETag (which is the content's MD5). A multipart ETag proves nothing either way.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';

export interface StoredVersion {
  size: number;
  etag?: string;
  /** The bytes, when the answer carried them. */
  inline?: Buffer;
}

/** true: identical; false: differs; undefined: cannot tell without downloading (multipart ETag). */
export async function sameContent(path: string, v: StoredVersion): Promise<boolean | undefined> {
  const st = await lstat(path);
  if (!st.isFile() || st.size !== v.size) return false;
  if (v.inline) return (await md5Of(path)) === md5(v.inline);
  const etag = v.etag?.replace(/"/g, '');
  if (!etag || etag.includes('-') || !/^[0-9a-f]{32}$/i.test(etag)) return undefined;
  return (await md5Of(path)) === etag.toLowerCase();
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function md5Of(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
