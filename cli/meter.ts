/**
 * The one progress line of a transfer, redrawn in place on stderr (a terminal only):
 *   3/10 files  12.5 MiB of 40.0 MiB  8.1 MiB/s  ETA 0:04
 * Speed is over the last few seconds, so a stall shows at once; the ETA follows from it.
 * Without a writer (a pipe, --json, -q) it only counts, for the summary.
 */
import type { Progress, ProgressFactory } from './progress';
import { formatBytes } from './progress';

/** Seconds of history the speed is measured over. */
const WINDOW_MS = 5_000;
const REDRAW_MS = 200;

export interface Totals {
  files?: number;
  bytes?: number;
}

export class Meter {
  files = 0;
  failed = 0;
  bytes = 0;
  readonly startedAt: number;
  private samples: Array<[number, number]> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: ((text: string) => void) | undefined,
    private totals: Totals,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
    this.samples.push([this.startedAt, 0]);
    if (write) {
      this.timer = setInterval(() => this.draw(), REDRAW_MS);
      this.timer.unref();
    }
  }

  setTotals(totals: Totals): void {
    this.totals = totals;
  }

  addBytes(n: number): void {
    this.bytes += n;
  }

  fileDone(ok: boolean): void {
    if (ok) this.files += 1;
    else this.failed += 1;
  }

  /** Bytes per second over the last WINDOW_MS. */
  speed(): number {
    const t = this.now();
    this.samples.push([t, this.bytes]);
    while (this.samples.length > 2 && this.samples[1]![0] < t - WINDOW_MS) this.samples.shift();
    const [t0, b0] = this.samples[0]!;
    return t > t0 ? ((this.bytes - b0) * 1000) / (t - t0) : 0;
  }

  /** The line as drawn now. */
  line(): string {
    const { files, bytes } = this.totals;
    const parts: string[] = [];
    if (files !== undefined && files > 1) parts.push(`${this.files + this.failed}/${files} files${this.failed > 0 ? ` (${this.failed} failed)` : ''}`);
    parts.push(bytes !== undefined ? `${formatBytes(this.bytes)} of ${formatBytes(bytes)}` : formatBytes(this.bytes));
    const speed = this.speed();
    parts.push(`${formatBytes(Math.round(speed))}/s`);
    if (bytes !== undefined && speed > 0) parts.push(`ETA ${formatDuration(Math.max(0, bytes - this.bytes) / speed)}`);
    return parts.join('  ');
  }

  /** A factory of per-transfer bars that all add to this line (what put and get report into). */
  progress(): ProgressFactory {
    return (_label, total) => {
      // One transfer of a size not known up front (get NAME): its size is the line's total.
      if (this.totals.bytes === undefined && this.totals.files === undefined) this.totals = { bytes: total };
      let last = 0;
      return {
        update: (done: number) => {
          this.addBytes(done - last);
          last = done;
        },
        stop: () => undefined,
      } satisfies Progress;
    };
  }

  private draw(): void {
    this.write?.(`\r${this.line()}\x1b[K`);
  }

  /** Clears the line; the caller prints the summary. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.write?.('\r\x1b[K');
  }

  /** Seconds since the start. */
  elapsed(): number {
    return (this.now() - this.startedAt) / 1000;
  }
}

/** `0:04`, `12:30`, `1:02:03`. */
export function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}
