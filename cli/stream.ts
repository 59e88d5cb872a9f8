/**
 * A readable stream (stdin for `dfs put -`) as the parts of an upload of unknown size: parts are
 * cut from the stream in order, each into the buffer of the worker asking (client/multipart.ts
 * keeps at most `concurrency` of them), so memory stays at a few parts whatever the stream's length.
 */
import type { PartSource } from '../client/multipart';

export interface StreamParts extends PartSource<Uint8Array> {
  /** Bytes read from the stream so far. */
  readonly bytes: number;
}

/**
 * Reads `stream` up to `limit` bytes: `ended` when it ended within them (then `head` is all of
 * it), otherwise `head` holds the first `limit` + 1 bytes and `rest` goes on from there.
 */
export async function readHead(stream: AsyncIterable<Uint8Array>, limit: number): Promise<{ head: Buffer; ended: boolean; rest: AsyncIterator<Uint8Array> }> {
  const it = stream[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let got = 0;
  while (got <= limit) {
    const r = await it.next();
    if (r.done) return { head: Buffer.concat(chunks, got), ended: true, rest: it };
    chunks.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
    got += r.value.byteLength;
  }
  return { head: Buffer.concat(chunks, got), ended: false, rest: it };
}

/**
 * The parts of `head` followed by what `rest` yields. Calls are served one after the other in
 * the order they came (the multipart client asks in increasing part numbers), so each part is the
 * next bytes of the stream. `onBytes` hears the count of bytes read after each part.
 */
export function streamParts(head: Buffer, rest: AsyncIterator<Uint8Array>, onBytes?: (bytes: number) => void): StreamParts {
  const buffers: Buffer[] = [];
  let pending: Buffer | undefined = head.length > 0 ? head : undefined;
  let ended = false;
  let bytes = 0;
  let parts = 0;
  let queue: Promise<unknown> = Promise.resolve();

  const fill = async (length: number, slot: number): Promise<Uint8Array | null> => {
    const buf = (buffers[slot] ??= Buffer.allocUnsafe(length));
    let got = 0;
    while (got < length) {
      if (!pending) {
        if (ended) break;
        const r = await rest.next();
        if (r.done) {
          ended = true;
          break;
        }
        pending = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      }
      const n = pending.copy(buf, got, 0, Math.min(pending.length, length - got));
      got += n;
      pending = n < pending.length ? pending.subarray(n) : undefined;
    }
    // An empty stream is one empty part; after that, nothing more means the end.
    if (got === 0 && parts > 0) return null;
    parts += 1;
    bytes += got;
    onBytes?.(bytes);
    return buf.subarray(0, got);
  };

  return {
    size: undefined,
    get bytes() {
      return bytes;
    },
    readPart(_n, _position, length, slot) {
      const part = queue.then(() => fill(length, slot));
      queue = part.catch(() => undefined);
      return part;
    },
    bytesIn: (body) => body.byteLength,
  };
}
