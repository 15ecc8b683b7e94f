// The component's imports, on the component's worker thread. jco's
// generated bindings call them synchronously; each one posts the call to
// the provider's thread, which does the I/O asynchronously, and waits with
// Atomics.wait until the answer is in the shared buffer. This is how
// synchronous imports get `fetch` on Node 20, which has no JSPI.

import v8 from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';

const control = new Int32Array(workerData.control);
const data = new Uint8Array(workerData.data);

/** States of `control[0]`. */
const WAITING = 0;

function hostCall(op, args) {
  Atomics.store(control, 0, WAITING);
  parentPort.postMessage({ kind: 'host-call', op, args });
  Atomics.wait(control, 0, WAITING);
  return v8.deserialize(data.subarray(0, Atomics.load(control, 1)));
}

/** `read-file`. */
export const readFile = (path) => hostCall('read-file', [path]);
/** `get-env`. */
export const getEnv = (name) => hostCall('get-env', [name]);
/** `http-fetch`. */
export const httpFetch = (request) => hostCall('http-fetch', [request]);
/** `run-command`. */
export const runCommand = (argv, timeoutMs) => hostCall('run-command', [argv, timeoutMs]);

/** `wasi:clocks/wall-clock.now`: the provider's clock. */
export function now() {
  const { seconds, nanoseconds } = hostCall('now', []);
  return { seconds: BigInt(seconds), nanoseconds };
}

/** `wasi:clocks/wall-clock.resolution`: one millisecond. */
export function resolution() {
  return { seconds: 0n, nanoseconds: 1_000_000 };
}
