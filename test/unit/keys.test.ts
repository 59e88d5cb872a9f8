import { InvalidKeyError } from '../../lib/errors';
import { encodeKeyPath, keyProblem, MAX_KEY_BYTES, parseKey } from '../../lib/keys';

const CONTROL = 'key contains a control character';

const bad: [string, string, string][] = [
  ['empty', '', 'key is empty'],
  ['a leading "/"', '/a.txt', 'key starts with "/"'],
  ['a trailing "/"', 'dir/', 'key ends with "/" (that names a folder, not a file)'],
  ['a lone "/"', '/', 'key starts with "/"'],
  ['"//" inside', 'a//b', 'key contains an empty path segment ("//")'],
  ['a "." segment', 'a/./b', 'key contains a "." or ".." segment'],
  ['a ".." segment', 'a/../b', 'key contains a "." or ".." segment'],
  ['only ".."', '..', 'key contains a "." or ".." segment'],
  ['only "."', '.', 'key contains a "." or ".." segment'],
  ['a leading ".." segment', '../etc/passwd', 'key contains a "." or ".." segment'],
  ['a NUL', 'a\u0000b', CONTROL],
  ['a tab', 'a\tb', CONTROL],
  ['a newline', 'a\nb', CONTROL],
  ['a carriage return', 'a\rb', CONTROL],
  ['an escape (C0, 0x1b)', 'a\u001b[31mb', CONTROL],
  ['unit separator (C0, 0x1f)', 'a\u001fb', CONTROL],
  ['DEL (0x7f)', 'a\u007fb', CONTROL],
  ['a C1 control (0x80)', 'a\u0080b', CONTROL],
  ['NEL (C1, 0x85)', 'a\u0085b', CONTROL],
  ['a C1 control (0x9f)', 'a\u009fb', CONTROL],
  ['a backslash', 'dir\\file.txt', 'key contains a backslash; use "/" to separate folders'],
  ['a lone high surrogate', 'a\ud800b', 'key contains an unpaired surrogate (not valid UTF-8)'],
  ['a lone low surrogate at the end', 'ab\udc00', 'key contains an unpaired surrogate (not valid UTF-8)'],
  ['901 ASCII bytes', 'a'.repeat(901), 'key is 901 bytes of UTF-8, over the limit of 900'],
  ['301 × "€": 301 chars but 903 bytes', '€'.repeat(301), 'key is 903 bytes of UTF-8, over the limit of 900'],
  ['226 emoji: 452 UTF-16 units, 904 bytes', '😀'.repeat(226), 'key is 904 bytes of UTF-8, over the limit of 900'],
  ['1025 ASCII bytes, past S3 itself', 'a'.repeat(1025), 'key is 1025 bytes of UTF-8, over the limit of 900'],
];

const good: [string, string][] = [
  ['spaces', 'my file (1).txt'],
  ['folders', 'a/b/c.txt'],
  ['unicode', 'données/日本語/ñ.txt'],
  ['an emoji (a surrogate pair)', 'photos/😀.png'],
  ['"+"', 'a+b.txt'],
  ['"%"', '100%.txt'],
  ['a percent sequence taken literally', 'a%20b'],
  ['a dot inside a name', 'a.b'],
  ['a name starting with ".."', '..a'],
  ['a name ending with ".."', 'a..'],
  ['a dotfile', '.env'],
  ['"..." as a segment', 'x/.../y'],
  ['characters URLs reserve', "a?b#c&d=e;f:g@h!i'j(k)l*m,n$o~p"],
  ['exactly 900 bytes of ASCII', 'a'.repeat(900)],
  ['exactly 900 bytes of 3-byte characters', '€'.repeat(300)],
  ['the U+FFFD replacement character', 'a\ufffdb'],
];

describe('keyProblem', () => {
  it('uses the S3 limit in bytes', () => {
    expect(MAX_KEY_BYTES).toBe(900);
  });

  it.each(bad)('refuses a key with %s', (_, key, message) => {
    expect(keyProblem(key)).toBe(message);
  });

  it.each(good)('accepts a key with %s', (_, key) => {
    expect(keyProblem(key)).toBeUndefined();
  });

  it('measures the length in UTF-8 bytes, not characters', () => {
    const key = '€'.repeat(342);
    expect(key.length).toBe(342);
    expect(keyProblem(key)).toMatch(/1026 bytes/);
  });
});

describe('parseKey', () => {
  it('returns a good key unchanged', () => {
    expect(parseKey('a b+c.txt')).toBe('a b+c.txt');
  });

  it('throws InvalidKeyError carrying the problem', () => {
    const err = (() => {
      try {
        parseKey('a/../b');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidKeyError);
    expect(err).toMatchObject({ status: 400, code: 'InvalidKey', message: 'key contains a "." or ".." segment' });
  });
});

describe('encodeKeyPath', () => {
  it.each(good)('round-trips a key with %s through decodeURIComponent', (_, key) => {
    expect(decodeURIComponent(encodeKeyPath(key))).toBe(key);
  });

  it('keeps "/" as the separator and escapes everything a path would misread', () => {
    expect(encodeKeyPath('dir/a b+c%.txt')).toBe('dir/a%20b%2Bc%25.txt');
    expect(encodeKeyPath('q?x#y')).toBe('q%3Fx%23y');
    expect(encodeKeyPath('é/😀')).toBe('%C3%A9/%F0%9F%98%80');
  });

  it('gives a path with no character a URL would change', () => {
    for (const [, key] of good) expect(encodeKeyPath(key)).toMatch(/^[A-Za-z0-9\-_.!~*'()%/]*$/);
  });
});
