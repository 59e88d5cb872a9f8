import { PassThrough, Readable } from 'node:stream';
import { firstDifferences, mismatch, WINDOW_BYTES, type Side } from '../../lib/bytecompare';

const bytes = (n: number, seed = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251));

/** A stream side handing out `content` in pieces of the given sizes (the rest in one piece). */
function pieces(content: Buffer, sizes: number[]): Readable {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(content.subarray(at, at + n));
    at += n;
  }
  if (at < content.length) out.push(content.subarray(at));
  return Readable.from(out, { objectMode: false });
}

/** Resolves once `condition` holds, looking after each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setImmediate(r));
}

describe('firstDifferences', () => {
  const content = bytes(10_000);

  it('finds nothing different between equal bodies, in memory or streamed in unlike pieces', async () => {
    await expect(firstDifferences([{ bytes: content }, { bytes: Buffer.from(content) }])).resolves.toEqual([undefined]);
    const a = pieces(content, [1, 4096, 3]);
    const b = pieces(content, [5000, 7, 7]);
    await expect(firstDifferences([{ stream: a }, { stream: b }, { bytes: content }])).resolves.toEqual([undefined, undefined]);
  });

  it('gives the offset of the first differing byte, also across piece boundaries', async () => {
    for (const at of [0, 1, 4095, 4096, 4097, content.length - 1]) {
      const other = Buffer.from(content);
      other[at] = other[at]! ^ 0x80;
      const sides: Side[] = [{ stream: pieces(content, [4096, 1]) }, { stream: pieces(other, [3, 4094]) }];
      await expect(firstDifferences(sides)).resolves.toEqual([at]);
    }
  });

  it('says where the shorter body ends when one is a prefix of the other, either way round', async () => {
    await expect(firstDifferences([{ bytes: content }, { bytes: content.subarray(0, 700) }])).resolves.toEqual([700]);
    await expect(firstDifferences([{ bytes: content.subarray(0, 700) }, { stream: pieces(content, [100]) }])).resolves.toEqual([700]);
    await expect(firstDifferences([{ bytes: Buffer.alloc(0) }, { bytes: Buffer.alloc(0) }])).resolves.toEqual([undefined]);
  });

  it('gives each side its own answer and closes a side at its first difference while the others go on', async () => {
    const early = Buffer.from(content);
    early[10] = 0;
    const late = Buffer.from(content);
    late[9000] = 0;
    const a = pieces(early, [512]);
    const c = pieces(content, [512]);
    const result = await firstDifferences([{ bytes: content }, { stream: a }, { stream: pieces(late, [512]) }, { stream: c }]);

    expect(result).toEqual([10, 9000, undefined]);
    expect(a.destroyed).toBe(true);
    expect(c.readableEnded).toBe(true);
  });

  it('answers at once with nothing to compare', async () => {
    await expect(firstDifferences([])).resolves.toEqual([]);
    await expect(firstDifferences([{ bytes: content }])).resolves.toEqual([]);
  });

  it('holds back a side that runs ahead: it pulls about a window, not the whole body', async () => {
    const size = 16 * WINDOW_BYTES;
    const fast = Buffer.alloc(size, bytes(251));
    let pulled = 0;
    let at = 0;
    const ahead = new Readable({
      read() {
        const piece = fast.subarray(at, at + 16 * 1024);
        at += piece.length;
        pulled += piece.length;
        this.push(piece.length ? piece : null);
      },
    });
    const slow = new PassThrough();
    const done = firstDifferences([{ stream: slow }, { stream: ahead }]);

    await until(() => ahead.isPaused());
    expect(pulled).toBeLessThanOrEqual(WINDOW_BYTES + 2 * ahead.readableHighWaterMark);
    slow.end(fast);
    await expect(done).resolves.toEqual([undefined]);
    expect(pulled).toBe(size);
  });

  it('rejects with the side\'s own error when its body fails, breaks off or is not as long as it must be', async () => {
    const failing = new PassThrough();
    const fail = (err: unknown) => Object.assign(new Error('server2 failed'), { cause: err });
    const broken = firstDifferences([{ bytes: content }, { stream: failing, fail }]);
    failing.write(content.subarray(0, 100));
    failing.destroy(new Error('read ECONNRESET'));
    await expect(broken).rejects.toThrow('server2 failed');

    const closed = new PassThrough();
    const cut = firstDifferences([{ stream: closed, fail }, { bytes: content }]);
    closed.write(content.subarray(0, 100));
    closed.destroy();
    await expect(cut).rejects.toThrow('server2 failed');

    const short = firstDifferences([{ bytes: content }, { stream: pieces(content.subarray(0, 50), []), length: content.length }]);
    await expect(short).rejects.toThrow(`the body ended after 50 of ${content.length} bytes`);
  });

  it('goes on when a side ends (and closes) before the others have sent all their bytes', async () => {
    const late = new PassThrough();
    const result = firstDifferences([{ bytes: content }, { stream: Readable.from([content]) }, { stream: late }]);
    late.write(content.subarray(0, 10));
    await new Promise((r) => setImmediate(r));
    late.end(content.subarray(10));
    await expect(result).resolves.toEqual([undefined, undefined]);
  });

  it('goes on when a side already found different fails while the others are still compared', async () => {
    const other = Buffer.from(content);
    other[0] = other[0]! ^ 1;
    const differs = new PassThrough();
    const late = new PassThrough();
    const result = firstDifferences([{ bytes: content }, { stream: differs }, { stream: late }]);
    differs.write(other.subarray(0, 10));
    late.write(content.subarray(0, 10));
    await until(() => differs.destroyed);
    differs.emit('error', new Error('reset after it was dropped'));
    late.end(content.subarray(10));
    await expect(result).resolves.toEqual([0, undefined]);
  });

  it('says a body closed before its end when it has no error of its own', async () => {
    const closed = new PassThrough();
    const cut = firstDifferences([{ bytes: content }, { stream: closed }]);
    closed.write(content.subarray(0, 100));
    closed.destroy();
    await expect(cut).rejects.toThrow('the body closed before its end');
  });

  it('ignores the failure of a side already found different', async () => {
    const other = Buffer.from(content);
    other[0] = other[0]! ^ 1;
    const s = new PassThrough();
    const result = firstDifferences([{ bytes: content }, { stream: s, fail: () => new Error('must not be seen') }]);
    s.write(other.subarray(0, 10));
    await expect(result).resolves.toEqual([0]);
    s.emit('error', new Error('late'));
  });
});

describe('mismatch', () => {
  it('is -1 for equal buffers and the first differing index otherwise', () => {
    expect(mismatch(Buffer.from('abcd'), Buffer.from('abcd'))).toBe(-1);
    expect(mismatch(Buffer.from('abcd'), Buffer.from('abxd'))).toBe(2);
    expect(mismatch(Buffer.from('xbcd'), Buffer.from('abcd'))).toBe(0);
    expect(mismatch(Buffer.from('abc'), Buffer.from('abcd'))).toBe(3);
  });
});
