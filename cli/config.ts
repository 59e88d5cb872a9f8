/**
 * Where the CLI finds the API. One place, so later commands, the auth token and the web page's
 * address come from the same file. Precedence for each setting: flag, environment, config file,
 * default. The config file is `$DFS_CONFIG`, else `$XDG_CONFIG_HOME/dfs/config.json`, else
 * `~/.config/dfs/config.json`, holding `{"endpoint", "lambdaEndpoint", "functionName"}`.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { usageError } from './exit';

export const DEFAULTS = Object.freeze({
  endpoint: 'http://localhost:3000',
  lambdaEndpoint: 'http://localhost:3002',
  functionName: 's3-dfs-local-api',
});

export interface CliConfig {
  /** Base URL of the HTTP API, without trailing "/" (may carry a stage path). */
  endpoint: string;
  /** Says where `endpoint` came from, so "cannot connect" can tell the user what to change. */
  endpointFrom: string;
  /** Lambda Invoke API endpoint for `--via lambda`. */
  lambdaEndpoint: string;
  functionName: string;
}

export interface ConfigSources {
  flags: { endpoint?: string };
  env: Record<string, string | undefined>;
  /** Reads a file as UTF-8; throws ENOENT like fs when it is missing. */
  readText?: (path: string) => string;
  home?: string;
}

type FileConfig = Partial<Record<'endpoint' | 'lambdaEndpoint' | 'functionName', string>>;

/** The config file's path: DFS_CONFIG, else under XDG_CONFIG_HOME, else under ~/.config. */
export function configPath(env: ConfigSources['env'], home: string = homedir()): string {
  if (env.DFS_CONFIG) return env.DFS_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(home, '.config');
  return join(base, 'dfs', 'config.json');
}

/**
 * Resolves every setting. Throws a usage CliError (exit 2) for an unreadable or malformed config
 * file, a missing file named by DFS_CONFIG, or an endpoint that is not an http(s) URL.
 * A missing default config file is fine: the defaults are the local stack.
 */
export function loadConfig({ flags, env, readText = (p) => readFileSync(p, 'utf8'), home }: ConfigSources): CliConfig {
  const path = configPath(env, home);
  const file = readConfigFile(path, readText, Boolean(env.DFS_CONFIG));
  const pick = (candidates: Array<[string | undefined, string]>, fallback: string): [string, string] => {
    for (const [value, from] of candidates) if (value) return [value, from];
    return [fallback, 'the default'];
  };
  const [endpoint, endpointFrom] = pick(
    [[flags.endpoint, '--endpoint'], [env.DFS_ENDPOINT, 'DFS_ENDPOINT'], [file.endpoint, path]],
    DEFAULTS.endpoint,
  );
  const [lambdaEndpoint, lambdaFrom] = pick(
    [[env.DFS_LAMBDA_ENDPOINT, 'DFS_LAMBDA_ENDPOINT'], [file.lambdaEndpoint, path]],
    DEFAULTS.lambdaEndpoint,
  );
  const [functionName] = pick([[env.DFS_FUNCTION, 'DFS_FUNCTION'], [file.functionName, path]], DEFAULTS.functionName);
  return {
    endpoint: httpUrl(endpoint, endpointFrom),
    endpointFrom,
    lambdaEndpoint: httpUrl(lambdaEndpoint, lambdaFrom),
    functionName,
  };
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
    throw usageError(`config file ${path} is not valid JSON: ${(err as Error).message}`, 'BadConfig');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw usageError(`config file ${path} must hold a JSON object like {"endpoint": "https://…"}`, 'BadConfig');
  }
  const out: FileConfig = {};
  // Other keys are left for later readers (web page, auth token), so they are not an error.
  for (const k of ['endpoint', 'lambdaEndpoint', 'functionName'] as const) {
    const v = (parsed as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw usageError(`config file ${path}: "${k}" must be a string`, 'BadConfig');
    out[k] = v;
  }
  return out;
}

function httpUrl(value: string, from: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`${from} gives ${JSON.stringify(value)}, which is not a URL`, 'BadConfig');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`${from} gives ${JSON.stringify(value)}; only http:// and https:// URLs work`, 'BadConfig');
  }
  if (url.search || url.hash) throw usageError(`${from} gives ${JSON.stringify(value)}; drop the "?…" or "#…" part`, 'BadConfig');
  return url.href.replace(/\/+$/, '');
}
