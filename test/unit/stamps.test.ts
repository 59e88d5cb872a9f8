import { BadRequestError } from '../../lib/errors';
import {
  adoptionOf,
  formatMtime,
  MAX_DATE_MS,
  MAX_FUTURE_MS,
  META,
  parseMtime,
  parseRequestMtime,
  stampOf,
  uploadMetadata,
  writeMetadata,
} from '../../lib/stamps';
import { toObjectHead } from '../../lib/stores';

/* Pure: what a version's metadata says, and what a request may set. No S3. */

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

describe('parseRequestMtime', () => {
  it('takes decimal milliseconds as they are', () => {
    expect(parseRequestMtime('1705309200123', NOW)).toBe(1705309200123);
    expect(parseRequestMtime('1', NOW)).toBe(1);
  });

  it('takes a number the JSON body carries like its decimal text', () => {
    expect(parseRequestMtime(1705309200123, NOW)).toBe(1705309200123);
  });

  it('answers now when the mtime is absent or empty', () => {
    expect(parseRequestMtime(undefined, NOW)).toBe(NOW);
    expect(parseRequestMtime('', NOW)).toBe(NOW);
  });

  it.each([
    ['hex', '0x10'],
    ['negative', '-1'],
    ['a float', '1.5'],
    ['an exponent', '1e12'],
    ['a leading space', ' 1705309200123'],
    ['a trailing space', '1705309200123 '],
    ['a space inside', '1705 309200123'],
    ['letters', 'yesterday'],
    ['an ISO date', '2026-01-02T03:04:05Z'],
    ['a plus sign', '+1705309200123'],
    ['17 digits', '10000000000000000'],
    ['1e17', '100000000000000000'],
  ])('refuses %s (%j) with BadRequestError', (_, raw) => {
    expect(() => parseRequestMtime(raw, NOW)).toThrow(BadRequestError);
  });

  it('refuses numbers that are not whole milliseconds in decimal', () => {
    for (const raw of [1.5, -1, 1e17, 1e21, NaN, Infinity]) expect(() => parseRequestMtime(raw, NOW)).toThrow(BadRequestError);
  });

  it('accepts exactly 5 minutes ahead of now and refuses one millisecond more, with a 400', () => {
    expect(parseRequestMtime(String(NOW + MAX_FUTURE_MS), NOW)).toBe(NOW + 5 * 60_000);
    const err = (() => {
      try {
        parseRequestMtime(String(NOW + MAX_FUTURE_MS + 1), NOW);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ status: 400, code: 'BadRequest' });
    expect((err as Error).message).toBe(`mtime ${new Date(NOW + MAX_FUTURE_MS + 1).toISOString()} is more than 5 minutes ahead of the server's clock`);
  });

  it('accepts the past, however far', () => {
    expect(parseRequestMtime('1000', NOW)).toBe(1000);
    expect(parseRequestMtime(String(NOW - 1), NOW)).toBe(NOW - 1);
    expect(parseRequestMtime(String(NOW), NOW)).toBe(NOW);
  });

  it('refuses the largest date plus one and beyond, without a RangeError building the message', () => {
    const now = MAX_DATE_MS; // even a clock at the end of time refuses what lies past it
    expect(() => parseRequestMtime(String(MAX_DATE_MS + 1), NOW)).toThrow(BadRequestError);
    expect(() => parseRequestMtime('8640000000000001', NOW)).toThrow(/ahead of the server's clock/);
    expect(() => parseRequestMtime('9999999999999999', NOW)).toThrow(BadRequestError);
    expect(parseRequestMtime(String(MAX_DATE_MS), now)).toBe(MAX_DATE_MS);
  });
});

describe('an mtime the API accepts', () => {
  it.each(['1', '999', '1000', '1705309200123', String(NOW)])('reads back as given once stored: %s', (raw) => {
    const ms = parseRequestMtime(raw, NOW);
    expect(parseMtime(formatMtime(ms))).toBe(ms);
  });

  it('refuses 0 with BadRequestError: it would read back as "unknown" (the made time)', () => {
    expect(parseMtime(formatMtime(0))).toBeUndefined();
    expect(() => parseRequestMtime('0', NOW)).toThrow(BadRequestError);
    expect(() => parseRequestMtime(0, NOW)).toThrow('mtime 0 reads as "unknown" (rclone and s3-dfs alike): leave it out to date the file now');
  });
});

describe('formatMtime', () => {
  it.each([
    [1705309200123, '1705309200.123'],
    [1705309200120, '1705309200.12'],
    [1705309200100, '1705309200.1'],
    [1705309200000, '1705309200'],
    [1705309200001, '1705309200.001'],
    [1705309200010, '1705309200.01'],
    [1705309200999, '1705309200.999'],
    [1, '0.001'],
    [999, '0.999'],
    [1000, '1'],
    [0, '0'],
  ])('writes %d ms as %j: seconds, a point only with a fraction, trailing zeros dropped', (ms, text) => {
    expect(formatMtime(ms)).toBe(text);
  });

  it('drops a fraction of a millisecond', () => {
    expect(formatMtime(1705309200123.9)).toBe('1705309200.123');
  });
});

describe('parseMtime', () => {
  it.each([
    ['rclone seconds with ms', '1705309200.123', 1705309200123],
    ['rclone nanoseconds, cut to ms', '1705309200.123456789', 1705309200123],
    ['microseconds, cut to ms', '1705309200.999999', 1705309200999],
    ['one decimal', '1705309200.1', 1705309200100],
    ['two decimals', '1705309200.12', 1705309200120],
    ['a leading zero in the fraction', '1705309200.05', 1705309200050],
    ['whole seconds, no point', '1705309200', 1705309200000],
    ['the last whole seconds read as seconds', '99999999999', 99_999_999_999_000],
    ['legacy whole ms from 1e11 on', '100000000000', 100_000_000_000],
    ['legacy whole ms of today', '1705309200123', 1705309200123],
    ['the smallest positive time', '0.001', 1],
    ['surrounding spaces', ' 1705309200.5 ', 1705309200500],
    ['the largest date, in seconds', '8640000000000.0', MAX_DATE_MS],
    ['the largest date, in legacy ms', '8640000000000000', MAX_DATE_MS],
  ])('reads %s: %j → %d', (_, raw, ms) => {
    expect(parseMtime(raw)).toBe(ms);
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['zero (tools write it for unknown)', '0'],
    ['zero with a fraction of nothing', '0.000'],
    ['negative', '-1705309200'],
    ['negative with a fraction', '-1.5'],
    ['an exponent', '1.7e9'],
    ['hex', '0x10'],
    ['garbage', 'yesterday'],
    ['a point without a fraction', '1705309200.'],
    ['a fraction without seconds', '.5'],
    ['ten decimals', '1705309200.1234567891'],
    ['two points', '1.2.3'],
    ['the largest date plus 1 ms, in seconds', '8640000000000.001'],
    ['the largest date plus 1 ms, in legacy ms', '8640000000000001'],
    ['17 digits', '10000000000000000'],
  ])('answers undefined for %s (%j)', (_, raw) => {
    expect(parseMtime(raw)).toBeUndefined();
  });

  it('reads back whatever formatMtime writes', () => {
    // Up to the year 5138, where whole seconds reach 1e11 and read as legacy milliseconds.
    for (const ms of [1, 999, 1000, 1705309200000, 1705309200001, 1705309200120, 1705309200123, 99_999_999_999_999]) {
      expect(parseMtime(formatMtime(ms))).toBe(ms);
    }
  });
});

describe('stampOf', () => {
  it('reads id, made and who', () => {
    expect(stampOf({ [META.id]: 'abc', [META.made]: '1705309200123', [META.who]: 'ann' })).toEqual({ id: 'abc', madeMs: 1705309200123, who: 'ann' });
  });

  it('calls a stamp without a who made by "unknown"', () => {
    expect(stampOf({ [META.id]: 'abc', [META.made]: '5' })).toEqual({ id: 'abc', madeMs: 5, who: 'unknown' });
  });

  it('takes made = 0 and the largest date', () => {
    expect(stampOf({ [META.id]: 'a', [META.made]: '0' })?.madeMs).toBe(0);
    expect(stampOf({ [META.id]: 'a', [META.made]: String(MAX_DATE_MS) })?.madeMs).toBe(MAX_DATE_MS);
  });

  it.each([
    ['no metadata', {}],
    ['no id', { [META.made]: '1705309200123' }],
    ['an empty id', { [META.id]: '', [META.made]: '1705309200123' }],
    ['no made', { [META.id]: 'abc' }],
    ['an empty made', { [META.id]: 'abc', [META.made]: '' }],
    ['made in rclone seconds', { [META.id]: 'abc', [META.made]: '1705309200.123' }],
    ['a negative made', { [META.id]: 'abc', [META.made]: '-5' }],
    ['made past the largest date', { [META.id]: 'abc', [META.made]: String(MAX_DATE_MS + 1) }],
    ['made of 17 digits', { [META.id]: 'abc', [META.made]: '10000000000000000' }],
    ['only an mtime', { mtime: '1705309200' }],
  ])('answers undefined for %s', (_, metadata) => {
    expect(stampOf(metadata as Record<string, string>)).toBeUndefined();
  });
});

describe('writeMetadata and uploadMetadata', () => {
  it('gives an API write every stamp and an rclone mtime', () => {
    expect(writeMetadata({ id: 'id1', madeMs: NOW, who: 'ann' }, 1705309200120)).toEqual({
      mtime: '1705309200.12', 'dfs-made': String(NOW), 'dfs-id': 'id1', 'dfs-who': 'ann',
    });
  });

  it('leaves dfs-made out of a multipart upload: it is made when it completes', () => {
    const m = uploadMetadata('id1', 'ann', 1705309200000);
    expect(m).toEqual({ mtime: '1705309200', 'dfs-id': 'id1', 'dfs-who': 'ann' });
    expect(stampOf(m)).toBeUndefined();
  });

  it('keeps a who that is not ASCII readable as US-ASCII metadata', () => {
    expect(writeMetadata({ id: 'i', madeMs: 1, who: 'zoë' }, 1)['dfs-who']).toBe('zo%C3%AB');
    expect(writeMetadata({ id: 'i', madeMs: 1, who: 'x'.repeat(300) }, 1)['dfs-who']).toHaveLength(200);
  });
});

describe('adoptionOf', () => {
  const MADE = Date.UTC(2026, 0, 2, 3, 0, 0);

  it('keeps the identity, the who and a valid mtime, and stamps made', () => {
    const a = adoptionOf({ [META.id]: 'given', [META.who]: 'ann', mtime: '1705309200.5', owner: 'x' }, MADE, 'server1');
    expect(a).toEqual({
      metadata: { [META.id]: 'given', [META.who]: 'ann', mtime: '1705309200.5', owner: 'x', [META.made]: String(MADE) },
      stamp: { id: 'given', madeMs: MADE, who: 'ann' },
      mtimeMs: 1705309200500,
    });
    expect(stampOf(a.metadata)).toEqual(a.stamp);
  });

  it('keeps a legacy whole-ms mtime as written', () => {
    const a = adoptionOf({ mtime: '1705309200123' }, MADE, 'server1');
    expect(a.mtimeMs).toBe(1705309200123);
    expect(a.metadata.mtime).toBe('1705309200123');
  });

  it('gives a version without identity a new one and names the store as who', () => {
    const a = adoptionOf({}, MADE, 'server2');
    expect(a.stamp.id).toMatch(/^[0-9a-f]{24}$/);
    expect(a.stamp.who).toBe('server2 (direct)');
    expect(a.metadata[META.who]).toBe('server2 (direct)');
    expect(adoptionOf({}, MADE, 'server2').stamp.id).not.toBe(a.stamp.id);
  });

  it('leaves a missing or invalid mtime out, so the version is dated by made', () => {
    for (const metadata of [{}, { mtime: 'garbage' }, { mtime: '0' }, { mtime: '-5' }] as Record<string, string>[]) {
      const a = adoptionOf({ ...metadata, owner: 'x' }, MADE, 'server1');
      expect(a.mtimeMs).toBe(MADE);
      expect(a.metadata).not.toHaveProperty('mtime');
      expect(a.metadata).toMatchObject({ owner: 'x', [META.made]: String(MADE) });
      expect(a).not.toHaveProperty('clampedFrom');
    }
  });

  it('keeps an mtime exactly 5 minutes after made', () => {
    const a = adoptionOf({ mtime: formatMtime(MADE + MAX_FUTURE_MS) }, MADE, 'server1');
    expect(a.mtimeMs).toBe(MADE + MAX_FUTURE_MS);
    expect(a.metadata.mtime).toBe(formatMtime(MADE + MAX_FUTURE_MS));
    expect(a).not.toHaveProperty('clampedFrom');
  });

  it('drops an mtime more than 5 minutes after made (dated by made), and says from what', () => {
    const ahead = MADE + MAX_FUTURE_MS + 1;
    const a = adoptionOf({ mtime: formatMtime(ahead) }, MADE, 'server1');
    expect(a.mtimeMs).toBe(MADE);
    expect(a.metadata).not.toHaveProperty('mtime');
    expect(a.clampedFrom).toBe(ahead);
  });

  it('dates a version adopted without an mtime by made once read back, and again when re-stamped', () => {
    const first = adoptionOf({ mtime: 'garbage' }, MADE, 'server1');
    expect(toObjectHead('server1', { Metadata: first.metadata, LastModified: new Date(MADE - 5000) }).mtimeMs).toBe(MADE);
    const again = adoptionOf(first.metadata, MADE + 7, 'server1');
    expect(again.metadata).not.toHaveProperty('mtime');
    expect(toObjectHead('server1', { Metadata: again.metadata }).mtimeMs).toBe(MADE + 7);
  });

  it('keeps an mtime long before made', () => {
    expect(adoptionOf({ mtime: '1' }, MADE, 'server1').mtimeMs).toBe(1000);
  });

  it('re-stamps made even when the version already carried one (its event knows when it was made)', () => {
    const a = adoptionOf({ [META.made]: '5', [META.id]: 'x' }, MADE, 'server1');
    expect(a.stamp.madeMs).toBe(MADE);
    expect(a.metadata[META.made]).toBe(String(MADE));
  });
});
