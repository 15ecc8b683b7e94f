// The component's worker: one instance of the component, called by the
// provider with `{id, fn, config, arg}` (`fn` a method of the component's
// `client` resource, or `open` to make it) and answering `{id, ok}`,
// `{id, err}` (the component's `error` variant) or `{id, trap}` (the
// instance is then dead). The worker keeps one `client` per config text.
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

/** Each config text's `client` resource in this instance. */
const clients = new Map();

function client(config) {
  let made = clients.get(config);
  if (!made) {
    made = new provider.Client(config);
    clients.set(config, made);
  }
  return made;
}

function call(fn, config, arg) {
  const made = client(config);
  switch (fn) {
    case 'open':
      return null;
    case 'token':
      return made.token();
    case 'tokenValidFor':
      return made.tokenValidFor(arg);
    case 'invalidate':
      return made.invalidate();
    case 'invalidateRejected':
      return made.invalidateRejected(arg);
    case 'requirements':
      return made.requirements();
    default:
      throw new Error(`unknown call ${fn}`);
  }
}

parentPort.on('message', ({ id, fn, config, arg }) => {
  try {
    parentPort.postMessage({ kind: 'answer', id, ok: call(fn, config, arg) });
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
