/**
 * Where the CLI finds the API, and the token it shows it. One place, so every command and the
 * web page's address come from the same file. Precedence for each setting: flag, environment,
 * config file, local stack, default. The config file is `$DFS_CONFIG`, else
 * `$XDG_CONFIG_HOME/dfs/config.json`, else `~/.config/dfs/config.json`, holding
 * `{"endpoint", "lambdaEndpoint", "functionName", "token"}`. The local stack (`npm start`)
 * leaves its own endpoints and a token in `<data dir>/local.json`.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isLocalEndpoint } from './client';
import { usageError } from './exit';
import { DEFAULT_TIMEOUTS, type Timeouts } from './http';

export const DEFAULTS = Object.freeze({
  endpoint: 'http://localhost:3000',
  lambdaEndpoint: 'http://localhost:3002',
  functionName: 's3-dfs-local-api',
});

/**
 * A bearer token. It prints as where it came from, never as itself (String, JSON,
 * util.inspect), so no message, --json output or debug dump can carry it by accident; only
 * `authorization()` gives the value, for the request header.
 */
export class Token {
  readonly #value: string;

  constructor(
    value: string,
    /** `DFS_TOKEN`, or the path of the file it was read from. */
    readonly from: string,
    /** Read from the local stack's local.json, which `npm start` renews. */
    readonly fromLocalStack = false,
  ) {
    this.#value = value;
  }

  /**
   * The name the token carries (`dfs_<name>_<secret>`), which the server records as who made a
   * request; undefined for a token not of that form (the server refuses it anyway).
   */
  get name(): string | undefined {
    return /^dfs_([a-z0-9][a-z0-9-]{0,39})_/.exec(this.#value)?.[1];
  }

  /** The `Authorization` header's value. */
  authorization(): string {
    return `Bearer ${this.#value}`;
  }

  toString(): string {
    return `[token from ${this.from}]`;
  }

  toJSON(): { from: string } {
    return { from: this.from };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

export interface CliConfig {
  /** Base URL of the HTTP API, without trailing "/" (may carry a stage path). */
  endpoint: string;
  /** Says where `endpoint` came from, so "cannot connect" can tell the user what to change. */
  endpointFrom: string;
  /** Lambda Invoke API endpoint for `--via lambda`. */
  lambdaEndpoint: string;
  functionName: string;
  /** The token for the HTTP API; absent when none is configured (the server then answers 401). */
  token?: Token;
  /** The config file's path (read or not), named in messages that say where a token can go. */
  configPath: string;
  /** Connect and idle timeouts, present when set (DFS_CONNECT_TIMEOUT, DFS_IDLE_TIMEOUT, the config file). */
  timeouts?: Timeouts;
  /** Where the timeouts were set, named when one expires. */
  timeoutsFrom?: string;
}

export interface ConfigSources {
  flags: { endpoint?: string };
  env: Record<string, string | undefined>;
  /** Reads a file as UTF-8; throws ENOENT like fs when it is missing. */
  readText?: (path: string) => string;
  /** The permission bits of a file (`stat().mode`); undefined where they mean nothing (Windows). */
  fileMode?: (path: string) => number | undefined;
  home?: string;
}

/** Every key the config file may hold; any other is refused, so a misspelt one is not silently ignored. */
export const CONFIG_KEYS = Object.freeze({
  endpoint: 'string',
  lambdaEndpoint: 'string',
  functionName: 'string',
  token: 'string',
  connectTimeout: 'number',
  idleTimeout: 'number',
} as const);

type ConfigKey = keyof typeof CONFIG_KEYS;

type FileConfig = Partial<Record<'endpoint' | 'lambdaEndpoint' | 'functionName' | 'token', string> & Record<'connectTimeout' | 'idleTimeout', number>>;

/** What `npm start` leaves in `<data dir>/local.json` (scripts/stack.ts). */
interface LocalStack extends FileConfig {
  path: string;
}

/** The config file's path: DFS_CONFIG, else under XDG_CONFIG_HOME, else under ~/.config. */
export function configPath(env: ConfigSources['env'], home: string = homedir()): string {
  if (env.DFS_CONFIG) return env.DFS_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(home, '.config');
  return join(base, 'dfs', 'config.json');
}

/**
 * Where the local stack's `local.json` is: `$DFS_DATA_DIR/local.json`, else
 * `$DFS_ROOT/.dfs-data/local.json` (bin/dfs.js sets DFS_ROOT to the project); undefined when
 * neither is set.
 */
export function localStackPath(env: ConfigSources['env']): string | undefined {
  if (env.DFS_DATA_DIR) return join(env.DFS_DATA_DIR, 'local.json');
  if (env.DFS_ROOT) return join(env.DFS_ROOT, '.dfs-data', 'local.json');
  return undefined;
}

const defaultFileMode = (path: string): number | undefined => (process.platform === 'win32' ? undefined : statSync(path).mode);

/**
 * Resolves every setting. The endpoint: `--endpoint`, DFS_ENDPOINT, the config file, the local
 * stack's (when local.json exists), http://localhost:3000. The token: DFS_TOKEN, the config
 * file's "token", then local.json's, the last only when the endpoint in use is on this machine
 * and on local.json's port (a token of the local stack is for that stack only).
 *
 * Throws a usage CliError (exit 2) for an unreadable or malformed config file, a missing file
 * named by DFS_CONFIG, a config file holding a token that others may read (mode & 077), an
 * endpoint that is not an http(s) URL or that carries a user name or password, and a token
 * that cannot go in a header. A missing default config file is fine; an unreadable local.json
 * counts as no local stack.
 */
export function loadConfig({ flags, env, readText = (p) => readFileSync(p, 'utf8'), fileMode = defaultFileMode, home }: ConfigSources): CliConfig {
  const path = configPath(env, home);
  const file = readConfigFile(path, readText, Boolean(env.DFS_CONFIG));
  if (file.token !== undefined) checkPrivate(path, fileMode);
  const local = readLocalStack(localStackPath(env), readText);
  const localFrom = local && `the local stack (${local.path})`;
  const pick = (candidates: Array<[string | undefined, string | undefined]>, fallback: string): [string, string] => {
    for (const [value, from] of candidates) if (value && from) return [value, from];
    return [fallback, 'the default'];
  };
  const [endpoint, endpointFrom] = pick(
    [[flags.endpoint, '--endpoint'], [env.DFS_ENDPOINT, 'DFS_ENDPOINT'], [file.endpoint, path], [local?.endpoint, localFrom]],
    DEFAULTS.endpoint,
  );
  const [lambdaEndpoint, lambdaFrom] = pick(
    [[env.DFS_LAMBDA_ENDPOINT, 'DFS_LAMBDA_ENDPOINT'], [file.lambdaEndpoint, path], [local?.lambdaEndpoint, localFrom]],
    DEFAULTS.lambdaEndpoint,
  );
  const [functionName] = pick([[env.DFS_FUNCTION, 'DFS_FUNCTION'], [file.functionName, path], [local?.functionName, localFrom]], DEFAULTS.functionName);
  const config: CliConfig = {
    endpoint: httpUrl(endpoint, endpointFrom),
    endpointFrom,
    lambdaEndpoint: httpUrl(lambdaEndpoint, lambdaFrom),
    functionName,
    configPath: path,
  };
  const token = tokenOf(env.DFS_TOKEN, file.token, path, local, config.endpoint);
  const timeouts = timeoutsOf(env, file, path);
  return { ...config, ...timeouts, ...(token ? { token } : {}) };
}

/** Seconds, above 0 and at most a day: anything else is a usage error naming where it came from. */
function seconds(value: string | number, from: string): number {
  const n = typeof value === 'number' ? value : value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 86_400) throw usageError(`${from} must be a number of seconds above 0 (at most 86400), not ${JSON.stringify(value)}`, 'BadConfig');
  return n * 1000;
}

/** The timeouts when the environment or the config file sets one; env first. */
function timeoutsOf(env: ConfigSources['env'], file: FileConfig, path: string): Pick<CliConfig, 'timeouts' | 'timeoutsFrom'> {
  const from: string[] = [];
  const one = (envName: string, key: 'connectTimeout' | 'idleTimeout', fallback: number): number => {
    const e = env[envName];
    if (e !== undefined && e !== '') return from.push(envName), seconds(e, envName);
    const f = file[key];
    if (f !== undefined) return from.push(`"${key}" in ${path}`), seconds(f, `"${key}" in ${path}`);
    return fallback;
  };
  const timeouts = { connectMs: one('DFS_CONNECT_TIMEOUT', 'connectTimeout', DEFAULT_TIMEOUTS.connectMs), idleMs: one('DFS_IDLE_TIMEOUT', 'idleTimeout', DEFAULT_TIMEOUTS.idleMs) };
  return from.length > 0 ? { timeouts, timeoutsFrom: from.join(' and ') } : {};
}

function tokenOf(fromEnv: string | undefined, fromFile: string | undefined, path: string, local: LocalStack | undefined, endpoint: string): Token | undefined {
  if (fromEnv) return new Token(headerSafe(fromEnv, 'DFS_TOKEN'), 'DFS_TOKEN');
  if (fromFile) return new Token(headerSafe(fromFile, `"token" in ${path}`), path);
  if (local?.token && local.endpoint && sameLocalPort(endpoint, local.endpoint)) {
    return new Token(headerSafe(local.token, `"token" in ${local.path}`), local.path, true);
  }
  return undefined;
}

/** Both on this machine and on the same port: the local stack's own API. */
function sameLocalPort(endpoint: string, stackEndpoint: string): boolean {
  try {
    const a = new URL(endpoint);
    const b = new URL(stackEndpoint);
    return isLocalEndpoint(a.href) && isLocalEndpoint(b.href) && portOf(a) === portOf(b);
  } catch {
    return false;
  }
}

const portOf = (url: URL) => url.port || (url.protocol === 'https:' ? '443' : '80');

/**
 * The token as it goes in the header, surrounding whitespace dropped. Anything a header cannot
 * carry is refused here: fetch would otherwise fail with an error that quotes the header value.
 * The message names the source, never the value.
 */
function headerSafe(value: string, from: string): string {
  const token = value.trim();
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw usageError(`${from} is not a token: it holds spaces, line breaks or other characters a token never has`, 'BadConfig');
  }
  return token;
}

function checkPrivate(path: string, fileMode: (path: string) => number | undefined): void {
  let mode: number | undefined;
  try {
    mode = fileMode(path);
  } catch (err) {
    throw usageError(`cannot check who may read config file ${path}: ${(err as Error).message}`, 'BadConfig');
  }
  if (mode !== undefined && (mode & 0o077) !== 0) {
    throw usageError(
      `config file ${path} holds a token but others may read or change it (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); ` +
        `make it yours alone: chmod 600 ${path}`,
      'ConfigNotPrivate',
    );
  }
}

function readConfigFile(path: string, readText: (p: string) => string, explicit: boolean): FileConfig {
  let text: string;
  try {
    text = readText(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return {};
    throw usageError(`cannot read config file ${path}: ${(err as Error).message}`, 'BadConfig');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // JSON.parse quotes the text near the error: a token could be in it.
    const where = /at position \d+/.exec((err as Error).message)?.[0];
    throw usageError(`config file ${path} is not valid JSON${where ? ` (${where})` : ''}`, 'BadConfig');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw usageError(`config file ${path} must hold a JSON object like {"endpoint": "https://…"}`, 'BadConfig');
  }
  const known = Object.keys(CONFIG_KEYS);
  const unknown = Object.keys(parsed).filter((k) => !Object.hasOwn(CONFIG_KEYS, k));
  if (unknown.length > 0) {
    const guess = unknown.map((k) => closest(k, known)).find((g) => g !== undefined);
    throw usageError(
      `config file ${path}: unknown key ${unknown.map((k) => JSON.stringify(k)).join(', ')}${guess ? ` (did you mean "${guess}"?)` : ''}; the keys are ${known.join(', ')}`,
      'BadConfig',
    );
  }
  const out: Record<string, unknown> = {};
  for (const k of known as ConfigKey[]) {
    const v = (parsed as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (typeof v !== CONFIG_KEYS[k]) throw usageError(`config file ${path}: "${k}" must be a ${CONFIG_KEYS[k]}`, 'BadConfig');
    out[k] = v;
  }
  return out as FileConfig;
}

/** The known key within two edits of `word` (a typo), if any. */
function closest(word: string, known: string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const cur = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
        prev = cur;
      }
    }
    return row[b.length]!;
  };
  return known.map((k) => [k, distance(word, k)] as const).filter(([, d]) => d <= 2).sort((x, y) => x[1] - y[1])[0]?.[0];
}

/** local.json of the local stack; undefined when there is none or it cannot be read (the stack may be writing it). */
function readLocalStack(path: string | undefined, readText: (p: string) => string): LocalStack | undefined {
  if (path === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText(path));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const out: LocalStack = { path };
  for (const k of ['endpoint', 'lambdaEndpoint', 'functionName', 'token'] as const) {
    const v = (parsed as Record<string, unknown>)[k];
    if (typeof v === 'string' && v !== '') out[k] = v;
  }
  return out;
}

/** Hides the user name and password of a URL-like text: `http://u:p@h` → `http://***@h`. */
export const withoutUserinfo = (value: string) => value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?[^/?#@\s]*@/, '$1***@');

function httpUrl(value: string, from: string): string {
  const shown = JSON.stringify(withoutUserinfo(value));
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`${from} gives ${shown}, which is not a URL`, 'BadConfig');
  }
  // Never sent (the API takes a token) and never printed: refused before anything else is said.
  if (url.username || url.password) {
    throw usageError(`${from} gives a URL with a user name or password (${shown}); remove the "…@" part: the API takes a token (DFS_TOKEN)`, 'BadConfig');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`${from} gives ${shown}; only http:// and https:// URLs work`, 'BadConfig');
  }
  if (url.search || url.hash) throw usageError(`${from} gives ${shown}; drop the "?…" or "#…" part`, 'BadConfig');
  return url.href.replace(/\/+$/, '');
}
