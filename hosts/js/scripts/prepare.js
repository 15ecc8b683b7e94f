// `npm install` (of this folder, or `npm install ./hosts/js` from the
// repository root) and `npm ci` run this: it makes sure the component
// anthropic_wif.wasm is here — writing it with the Rust workspace's
// `write_component` example when it is missing — and transpiles it with jco
// into generated/ when that is missing or older than the component.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const root = path.resolve(here, '..', '..');
const wasm = path.join(here, 'anthropic_wif.wasm');
const bindings = path.join(here, 'generated', 'anthropic_wif.js');
const WRITE = 'cargo run --example write_component -- hosts/js/anthropic_wif.wasm';

function fail(message) {
  console.error(`anthropic-wif: ${message}`);
  process.exit(1);
}

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

if (mtime(wasm) === null) {
  if (!fs.existsSync(path.join(root, 'Cargo.toml')) || !fs.existsSync(path.join(root, 'host-example'))) {
    fail(`the component hosts/js/anthropic_wif.wasm is missing; from the anthropic-wif repository root run \`${WRITE}\`, then install again`);
  }
  console.error(`anthropic-wif: writing the component with \`${WRITE}\` (the first build of the Rust workspace takes a while)`);
  const cargo = spawnSync('cargo', ['run', '--quiet', '--example', 'write_component', '--', wasm], { cwd: root, stdio: 'inherit' });
  if (cargo.error?.code === 'ENOENT') fail(`cargo is not installed, so the component cannot be written; install Rust (https://rustup.rs) and run \`${WRITE}\` from the repository root`);
  if (cargo.status !== 0 || mtime(wasm) === null) fail(`\`${WRITE}\` failed (see above); fix it and install again`);
}

if (mtime(bindings) === null || mtime(bindings) < mtime(wasm)) {
  const jco = spawnSync('npm', ['run', '--silent', 'build'], { cwd: here, stdio: 'inherit' });
  if (jco.status !== 0) fail('`npm run build` (jco transpile) failed; run `npm install` in hosts/js so that jco is there, then install again');
}
