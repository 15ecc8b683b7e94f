// The component's worker: one instance of the component, called by the
// provider with `{id, fn, config}` and answering `{id, ok}`, `{id, err}` (the
// component's `error` variant) or `{id, trap}` (the instance is then dead).
// Its core modules are compiled here with their memory capped (memory.js).

import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

import { capMemory } from './memory.js';
import * as capabilities from './worker-imports.js';

const { instantiate } = await import('../generated/anthropic_wif.js');

const folder = new URL('../generated/', import.meta.url);
const getCoreModule = (name) => new WebAssembly.Module(capMemory(fs.readFileSync(new URL(name, folder)), workerData.maxMemoryBytes));
const { provider } = instantiate(getCoreModule, {
  'anthropic-wif:federation/capabilities': capabilities,
  'wasi:clocks/wall-clock': capabilities,
});

parentPort.on('message', ({ id, fn, config }) => {
  try {
    parentPort.postMessage({ kind: 'answer', id, ok: provider[fn](config) });
  } catch (e) {
    if (e && Object.prototype.hasOwnProperty.call(e, 'payload')) {
      parentPort.postMessage({ kind: 'answer', id, err: e.payload });
    } else {
      parentPort.postMessage({ kind: 'answer', id, trap: firstLine(e) });
    }
  }
});

parentPort.postMessage({ kind: 'ready' });

function firstLine(e) {
  return String(e?.message ?? e).split('\n')[0];
}
