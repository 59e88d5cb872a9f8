/**
 * `npm start [-- --reset]`: the local stack on the ports of DESIGN.md, data kept in .dfs-data/.
 * Ports: DFS_HTTP_PORT (3000), DFS_S3_PORT (4569), DFS_LAMBDA_PORT (3002), DFS_WEBSOCKET_PORT (3001).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { relative, resolve } from 'node:path';
import { hasLegacyCrypto, LEGACY_FLAG, startLocalStack, withFlag, type LocalStack } from './stack';

const USAGE = `usage: npm start [-- --reset]

  --reset   wipe .dfs-data/ and load the sample files again
  --help    this text

Ports come from DFS_HTTP_PORT (3000), DFS_S3_PORT (4569), DFS_LAMBDA_PORT (3002)
and DFS_WEBSOCKET_PORT (3001). Ctrl-C stops everything.`;

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
  return n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const unknown = args.filter((a) => a !== '--reset');
  if (unknown.length > 0) {
    console.error(`unknown argument ${unknown[0]}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }

  // Until the stack is returned, a signal just exits: stack.ts kills sls on process exit.
  const early = () => process.exit(130);
  process.on('SIGINT', early).on('SIGTERM', early);

  const started = Date.now();
  const stack = await startLocalStack({
    httpPort: port('DFS_HTTP_PORT', 3000),
    s3Port: port('DFS_S3_PORT', 4569),
    lambdaPort: port('DFS_LAMBDA_PORT', 3002),
    websocketPort: port('DFS_WEBSOCKET_PORT', 3001),
    reset: args.includes('--reset'),
    ...(process.env.DFS_DATA_DIR ? { dataDir: process.env.DFS_DATA_DIR } : {}),
  });
  process.off('SIGINT', early).off('SIGTERM', early);
  stopOnSignal(stack);
  console.log(banner(stack, Date.now() - started));
}

function banner(stack: LocalStack, ms: number): string {
  const local = (url: string) => url.replace('//127.0.0.1:', '//localhost:');
  const data = relative(process.cwd(), stack.dataDir) || '.';
  return `
s3-dfs local stack ready in ${(ms / 1000).toFixed(1)} s
  API      ${local(stack.apiUrl)}
  S3       ${local(stack.s3Endpoint)}   (path-style, credentials S3RVER/S3RVER)
  Lambda   ${local(stack.lambdaEndpoint)}   (function ${stack.functionName})
  stores   ${stack.stores.map((s) => `${s.name}=${s.bucket}`).join('  ')}
  data     ${data}/ (${stack.seeded ? 'sample files loaded' : 'kept from the last run; --reset reloads the samples'})

${tryCommands(local(stack.apiUrl), stack.dataDir)}

Ctrl-C stops everything.
`;
}

/**
 * The sample commands as they reach this stack: dfs finds the stack's endpoint and token in
 * .dfs-data/local.json of its checkout, so only a moved data folder or API port needs saying.
 */
function tryCommands(apiUrl: string, dataDir: string): string {
  const defaultData = resolve(__dirname, '..', '.dfs-data');
  const env = resolve(dataDir) !== defaultData ? `export DFS_DATA_DIR=${resolve(dataDir)}\n  ` : '';
  const endpoint = apiUrl !== 'http://localhost:3000' ? ` --endpoint ${apiUrl}` : '';
  const dfs = (args: string) => `dfs${endpoint} ${args}`;
  return `Try (dfs on your PATH: npm link, once; or node bin/dfs.js):
  ${env}${dfs('get fileA.txt')}
  ${dfs('get fileB.txt')}
  ${dfs('ls')}`;
}

/**
 * Ctrl-C reaches this process twice (the terminal signals the whole foreground group and tsx
 * relays it again), so the handler stays installed and later signals wait for the first stop.
 */
function stopOnSignal(stack: LocalStack): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the local stack…`);
    stack.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop).on('SIGTERM', stop);
}

/**
 * Runs this script again with the legacy OpenSSL provider (see hasLegacyCrypto), passing
 * signals on and exiting with its code. Costs one more Node start, only when the flag is missing.
 */
function rerunWithLegacyCrypto(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, NODE_OPTIONS: withFlag(process.env.NODE_OPTIONS, LEGACY_FLAG) },
  });
  const relay = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', relay).on('SIGTERM', relay);
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
}

if (hasLegacyCrypto()) {
  main().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
} else {
  rerunWithLegacyCrypto();
}
