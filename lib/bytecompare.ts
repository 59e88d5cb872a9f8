import type { Readable } from 'node:stream';

/*
 * The byte compare itself, with no S3 in it: bodies compared side by side as their bytes arrive,
 * with backpressure. lib/compare.ts opens the bodies and decides what a difference means.
 *
 * No npm package does this (stream-equal and its kind compare two streams to a boolean, copying
 * pieces, without the offset, N sides, or a side already in memory), so it is written here.
 */

/**
 * One side of a compare: a body arriving piece by piece, or one already in memory.
 * A stream side is read in flowing mode and paused while its window is full (backpressure:
 * its socket is left unread and TCP holds the sender back).
 */
export type Side =
  | { bytes: Buffer }
  | {
      stream: Readable;
      /** The length it must have: a body ending elsewhere fails. */
      length?: number;
      /** The error a failure of this side becomes. */
      fail?: (err: unknown) => Error;
      /** Told of every piece as it arrives. */
      onPiece?: (bytes: number) => void;
    };

/**
 * Bytes a stream side may hold ahead of the compare before it is paused: with the socket's own
 * buffers, the memory bound per side. 512 KiB keeps a loopback or LAN stream busy (measured in
 * BENCHMARKS.md compare-memory: more bought no speed).
 */
export const WINDOW_BYTES = 512 * 1024;

/** A side's bytes that arrived and are not compared yet, as the pieces they came in (never copied). */
class Window {
  private readonly pieces: Buffer[] = [];
  /** Bytes held. */
  length = 0;

  constructor(public ended: boolean) {}

  static of(bytes: Buffer): Window {
    const w = new Window(true);
    w.push(bytes);
    return w;
  }

  /** Bytes that can be compared in one go: the first piece. */
  get front(): number {
    return this.pieces[0]?.length ?? 0;
  }

  view(n: number): Buffer {
    return this.pieces[0]!.subarray(0, n);
  }

  push(piece: Buffer): void {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.length += piece.length;
  }

  consume(n: number): void {
    const first = this.pieces[0]!;
    this.length -= n;
    if (n === first.length) this.pieces.shift();
    else this.pieces[0] = first.subarray(n);
  }
}

/**
 * Compares sides as their bytes arrive, holding at most a window of each, and stops at the
 * first difference. Returns, per side after the first, the offset of its first byte that
 * differs from the first side's (a side that ends earlier or later differs where the shorter
 * one ends), or undefined when it holds the same bytes. A stream side found different is
 * destroyed at once; the caller destroys the rest. A stream side that fails, or closes before
 * its end, rejects with `fail(err)` (default: the error itself) and nothing is compared further.
 */
export function firstDifferences(sides: Side[]): Promise<(number | undefined)[]> {
  return new Promise((resolve, reject) => {
    const [first, ...rest] = sides;
    if (!first) return resolve([]);
    const result: (number | undefined)[] = rest.map(() => undefined);
    const windows = sides.map((s) => ('bytes' in s ? Window.of(s.bytes) : new Window(false)));
    const streams = sides.map((s) => ('stream' in s ? s.stream : undefined));
    const ref = windows[0]!;
    let active = rest.map((_, i) => i + 1);
    let at = 0;
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      for (const s of streams) s?.removeAllListeners('data').pause();
      if (err !== undefined) reject(err);
      else resolve(result);
    };
    const drop = (i: number, offset: number) => {
      result[i - 1] = offset;
      active = active.filter((j) => j !== i);
      streams[i]?.destroy();
    };
    // Compares what every side holds in common, as far as it goes; called after every event.
    const step = () => {
      for (;;) {
        if (done) return;
        if (active.length === 0) return finish();
        const waiting = [0, ...active].some((i) => windows[i]!.length === 0 && !windows[i]!.ended);
        if (waiting) break;
        let n = ref.front;
        for (const i of active) n = Math.min(n, windows[i]!.front);
        if (n === 0) {
          // Someone ended with nothing left: who differs from whom is decided by who still has bytes.
          if (ref.length === 0) {
            for (const i of active) if (windows[i]!.length > 0) drop(i, at);
            return finish();
          }
          for (const i of active) if (windows[i]!.length === 0) drop(i, at);
          continue;
        }
        const r = ref.view(n);
        for (const i of active) {
          const d = mismatch(r, windows[i]!.view(n));
          if (d >= 0) drop(i, at + d);
        }
        ref.consume(n);
        for (const i of active) windows[i]!.consume(n);
        at += n;
      }
      for (const [i, s] of streams.entries()) if (s?.isPaused() && windows[i]!.length < WINDOW_BYTES) s.resume();
    };
    sides.forEach((side, i) => {
      if (!('stream' in side)) return;
      const s = side.stream;
      const w = windows[i]!;
      const fail = (err: unknown) => {
        if (!done && (i === 0 || active.includes(i))) finish(side.fail ? side.fail(err) : err);
      };
      let got = 0;
      s.on('data', (piece: Buffer) => {
        got += piece.length;
        side.onPiece?.(piece.length);
        w.push(piece);
        if (w.length >= WINDOW_BYTES) s.pause();
        step();
      });
      s.once('end', () => {
        if (side.length !== undefined && got !== side.length) return fail(new Error(`the body ended after ${got} of ${side.length} bytes`));
        w.ended = true;
        step();
      });
      s.once('error', fail);
      s.once('close', () => {
        if (!w.ended) fail(new Error('the body closed before its end'));
      });
    });
    step();
  });
}

/** Index of the first byte where two buffers of one length differ, or -1 when they are equal. */
export function mismatch(x: Buffer, y: Buffer): number {
  // memcmp first: the common case, equal bytes, never loops in JavaScript.
  if (x.equals(y)) return -1;
  for (let i = 0; ; i++) if (x[i] !== y[i]) return i;
}
