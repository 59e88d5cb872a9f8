#!/usr/bin/env node
'use strict';
// `dfs` runs straight from the TypeScript in cli/, with no build step and no install script:
// the first run (and any run after a source changed) bundles cli/main.ts with esbuild into a
// cache file; every other run only stats the recorded inputs and requires that file.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cacheDir = process.env.DFS_CLI_CACHE || path.join(root, 'node_modules', '.cache', 'dfs');
const bundlePath = path.join(cacheDir, 'dfs.js');
const inputsPath = path.join(cacheDir, 'inputs.json');

/** True when the bundle is newer than every file it was built from (and than cli/ itself). */
function isFresh() {
  try {
    const builtAt = fs.statSync(bundlePath).mtimeMs;
    const inputs = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
    return inputs.every((f) => fs.statSync(path.resolve(root, f)).mtimeMs <= builtAt);
  } catch {
    return false; // missing bundle, missing input list, or an input deleted: rebuild
  }
}

function build() {
  // The bundle's mtime is set to this moment, so a source saved during the build is newer.
  const startedAt = new Date();
  const esbuild = require('esbuild');
  let result;
  try {
    result = esbuild.buildSync({
      absWorkingDir: root,
      entryPoints: ['cli/main.ts'],
      outfile: bundlePath,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      // Only `--via lambda` needs the SDK: left out of the bundle and loaded on demand.
      external: ['@aws-sdk/*'],
      legalComments: 'none',
      banner: { js: '// Built by bin/dfs.js from cli/; do not edit. Deleting it is safe.' },
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
  } catch (err) {
    const errors = (err.errors || []).map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`);
    process.stderr.write(`dfs: cannot build the CLI from cli/:\n  ${errors.join('\n  ') || err.message}\n`);
    process.exit(1);
  }
  const code = result.outputFiles[0].text;
  const inputs = [...Object.keys(result.metafile.inputs), 'cli', 'bin/dfs.js'];
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    // Temp files then renames: concurrent first runs never see a half-written bundle.
    const tmp = `.${process.pid}.tmp`;
    fs.writeFileSync(inputsPath + tmp, JSON.stringify(inputs));
    fs.renameSync(inputsPath + tmp, inputsPath);
    fs.writeFileSync(bundlePath + tmp, code);
    fs.utimesSync(bundlePath + tmp, startedAt, startedAt);
    fs.renameSync(bundlePath + tmp, bundlePath);
  } catch {
    // Read-only install: run the bundle from memory, rebuilding next time.
    const Module = require('node:module');
    const m = new Module(bundlePath, module);
    m.filename = bundlePath;
    m.paths = Module._nodeModulePaths(root);
    m._compile(code, bundlePath);
    return m.exports;
  }
  return require(bundlePath);
}

// The CLI finds the local stack's endpoints and token in <root>/.dfs-data/local.json (cli/config.ts).
if (!process.env.DFS_ROOT) process.env.DFS_ROOT = root;

const cli = isFresh() ? require(bundlePath) : build();
cli.main();
