/**
 * What every command's action shares: the process it runs in (`Io`), the global flags, and the
 * ways to reach the API, print, draw progress and stop on Ctrl-C that follow from them.
 */
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { httpTransport, lambdaTransport, type Transport } from './client';
import { loadConfig, type CliConfig } from './config';
import { EXIT } from './exit';
import { DEFAULT_TIMEOUTS, type Timeouts } from './http';
import { Meter } from './meter';
import type { Lines } from './output';
import { barProgress, noProgress, type ProgressFactory } from './progress';

/** Everything the CLI touches of its process, so tests can run it in-process. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** Draw progress bars (stderr is a terminal). */
  interactive: boolean;
  /** Asks a yes/no question on the terminal; absent when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
  /** Aborted on Ctrl-C. When absent, commands that stop cleanly listen to SIGINT/SIGTERM themselves. */
  interrupt?: AbortSignal;
  /** Where file bytes go for `dfs cat` and `-o -`; default process.stdout. */
  stdoutBytes?: Writable;
  /** Where `dfs put -` reads from; default process.stdin. */
  stdin?: AsyncIterable<Uint8Array>;
}

export const processIo = (): Io => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  interactive: Boolean(process.stderr.isTTY),
  ...(process.stdin.isTTY ? { confirm: askOnTerminal } : {}),
});

/** "y" or "yes" (any case) is yes; anything else, Ctrl-C or Ctrl-D is no. */
function askOnTerminal(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    rl.on('SIGINT', () => {
      process.stderr.write('\n');
      rl.close();
    });
    rl.on('close', () => resolve(false));
    rl.question(question, (answer) => {
      resolve(/^y(es)?$/i.test(answer.trim()));
      rl.close();
    });
  });
}

/** The options of `dfs` itself, taken before or after the command. */
export interface GlobalFlags {
  endpoint?: string;
  via: 'http' | 'lambda';
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

export class Ctx<F extends object = object> {
  readonly flags: GlobalFlags & F;
  private config?: CliConfig;

  constructor(
    readonly io: Io,
    cmd: Command,
  ) {
    // Global flags live on the program; optsWithGlobals merges them with the command's own.
    this.flags = cmd.optsWithGlobals<GlobalFlags & F>();
  }

  get json(): boolean {
    return Boolean(this.flags.json);
  }

  /** Request lines on stderr with -v/--debug: method, path, status, time, request id; never a token. */
  readonly debug = (line: string): void => {
    if (this.flags.debug) this.io.stderr(`dfs: debug: ${line}\n`);
  };

  /** The configuration (read once, on first use: a bad argument fails before it). */
  settings(): CliConfig {
    this.config ??= loadConfig({ flags: { ...(this.flags.endpoint !== undefined ? { endpoint: this.flags.endpoint } : {}) }, env: this.io.env });
    return this.config;
  }

  get timeouts(): Timeouts {
    return this.settings().timeouts ?? DEFAULT_TIMEOUTS;
  }

  /** The transport of `--via`, configured (cli/config.ts); over HTTP with the token, when there is one. */
  readonly connect = (): Transport => {
    const config = this.settings();
    if (this.flags.debug) this.debug(`endpoint ${config.endpoint} (from ${config.endpointFrom})${config.token ? `, token from ${config.token.from}` : ', no token'}`);
    if (this.flags.via === 'lambda') return lambdaTransport({ endpoint: config.lambdaEndpoint, functionName: config.functionName });
    return httpTransport({
      endpoint: config.endpoint,
      endpointFrom: config.endpointFrom,
      configPath: config.configPath,
      ...(config.timeouts ? { timeouts: config.timeouts, timeoutsFrom: config.timeoutsFrom ?? 'the config' } : {}),
      ...(config.token ? { token: config.token } : {}),
      ...(this.flags.debug ? { debug: this.debug } : {}),
    });
  };

  printJson(value: unknown): void {
    this.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  }

  /**
   * Prints what a command says. `status` lines (what was done) and warnings are left out with
   * -q; `data` lines (a listing, a token) are what was asked for and always printed. Errors
   * (lines starting "dfs: " but not "dfs: warning:") always go to stderr.
   */
  say({ out, err }: Lines, kind: 'status' | 'data' = 'status'): void {
    const quiet = Boolean(this.flags.quiet);
    const shownOut = quiet && kind === 'status' ? [] : out;
    const shownErr = quiet ? err.filter((l) => l.startsWith('dfs: ') && !l.startsWith('dfs: warning:')) : err;
    if (shownOut.length > 0) this.io.stdout(`${shownOut.join('\n')}\n`);
    if (shownErr.length > 0) this.io.stderr(`${shownErr.join('\n')}\n`);
  }

  /** A warning on stderr, unless -q or --json. */
  warn(text: string): void {
    if (!this.flags.quiet && !this.json) this.io.stderr(`dfs: warning: ${text}\n`);
  }

  /** Bars on stderr only when it is a terminal, and not with -q. */
  async progress(): Promise<ProgressFactory> {
    return this.showsProgress ? barProgress(process.stderr) : noProgress;
  }

  get showsProgress(): boolean {
    // --json concerns stdout: a terminal on stderr still sees how a long transfer goes.
    return this.io.interactive && !this.flags.quiet;
  }

  /** One line of totals, speed and ETA for transfers; drawn only when progress is shown. */
  meter(totals: { files?: number; bytes?: number }): Meter {
    return new Meter(this.showsProgress ? (t) => process.stderr.write(t) : undefined, totals);
  }

  /**
   * Runs `work` with a signal aborted by the first Ctrl-C (or SIGTERM), so the command can stop
   * cleanly and say what it left behind; a second one exits at once.
   */
  async interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.io.interrupt) return work(this.io.interrupt);
    const ctrl = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (ctrl.signal.aborted) process.exit(signal === 'SIGINT' ? EXIT.interrupted : 143);
      ctrl.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      return await work(ctrl.signal);
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
  }
}
