// The component's worker: one instance of the component, called by the
// provider with `{id, fn, config}` and answering `{id, ok}`, `{id, err}` (the
// component's `error` variant) or `{id, trap}` (the instance is then dead).

import { parentPort } from 'node:worker_threads';

const { provider } = await import('../generated/anthropic_wif.js');

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
