/**
 * `npm run bench:setup`: installs the programs the benchmarks compare against (Debian's rclone
 * and awscli, and GNU time for peak RSS) where the bench calls them, /usr/bin. Already there:
 * says so and prints their versions. Missing: apt-get installs them as root, or through sudo
 * when it needs no password; otherwise prints the one command to run and exits 1.
 *
 * The bench calls /usr/bin/aws, not whatever `aws` comes first on PATH (an AWS CLI v2 in
 * /usr/local differs in output and start-up), and runs rclone without AWS_CA_BUNDLE (an HTTPS
 * setting that rclone refuses when the file is missing): see bench/peers.ts.
 */
import { spawnSync } from 'node:child_process';
import { installAdvice, missingPeers, PEERS, type PeerName } from './peers';

const ALL = Object.keys(PEERS) as PeerName[];

function versions(): string {
  const first = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, AWS_CA_BUNDLE: '' } });
    return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '?';
  };
  return [`rclone: ${first(PEERS.rclone.path, ['version'])}`, `awscli: ${first(PEERS.aws.path, ['--version'])}`, `time:   ${first(PEERS.time.path, ['--version'])}`].join('\n');
}

function main(): number {
  const missing = missingPeers(ALL);
  if (missing.length === 0) {
    process.stdout.write(`benchmark peers installed:\n${versions()}\n`);
    return 0;
  }
  const pkgs = [...new Set(missing.map((n) => PEERS[n].apt))];
  const root = process.getuid?.() === 0;
  const sudo = !root && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (!root && !sudo) {
    process.stderr.write(`${installAdvice(missing).replace('    (or: npm run bench:setup)', '')}\n(npm run bench:setup installs them when run as root or with password-less sudo)\n`);
    return 1;
  }
  const run = (args: string[]) => {
    const [cmd, ...rest] = root ? args : ['sudo', '-n', ...args];
    process.stderr.write(`$ ${[cmd, ...rest].join(' ')}\n`);
    return spawnSync(cmd!, rest, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  };
  if (!run(['apt-get', 'update']) || !run(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs])) {
    process.stderr.write(`apt-get failed; ${installAdvice(missing)}\n`);
    return 1;
  }
  const still = missingPeers(ALL);
  if (still.length > 0) {
    process.stderr.write(`installed, yet still not found where the bench calls them:\n${installAdvice(still)}\n`);
    return 1;
  }
  process.stdout.write(`benchmark peers installed:\n${versions()}\n`);
  return 0;
}

process.exit(main());
