import { InvalidKeyError } from './errors';

/**
 * The longest key, in UTF-8 bytes. S3 takes 1,024, but the control bucket names its records
 * after the key with a prefix and a suffix (`superseded/<key>/<id>`, `locks/<store>/<key>`):
 * 900 leaves them room.
 */
export const MAX_KEY_BYTES = 900;

// C0 controls, DEL and C1 controls: they break terminals, logs and XML listings.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

/**
 * Returns why `key` cannot name a file, or `undefined` when it can.
 * Shared by the API and the CLI so both refuse the same keys with the same words.
 */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'key is empty';
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    return `key is ${Buffer.byteLength(key, 'utf8')} bytes of UTF-8, over the limit of ${MAX_KEY_BYTES}`;
  }
  if (CONTROL.test(key)) return 'key contains a control character';
  if (key.includes('\\')) return 'key contains a backslash; use "/" to separate folders';
  if (/[\ud800-\udfff]/u.test(key)) return 'key contains an unpaired surrogate (not valid UTF-8)';
  if (key.startsWith('/')) return 'key starts with "/"';
  if (key.endsWith('/')) return 'key ends with "/" (that names a folder, not a file)';
  const segments = key.split('/');
  if (segments.some((s) => s === '')) return 'key contains an empty path segment ("//")';
  if (segments.some((s) => s === '.' || s === '..')) return 'key contains a "." or ".." segment';
  return undefined;
}

/** Throws InvalidKeyError saying what is wrong, else returns the key unchanged. */
export function parseKey(key: string): string {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new InvalidKeyError(problem);
  return key;
}

/** Percent-encodes each segment so any valid key survives a URL path, "/" kept as separator. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}
