// The provider: the component on a worker thread, called from the
// application's thread.
//
// - Tokens are kept by the host until the component's `refresh-after`; until
//   then `getToken` does not enter the component.
// - After it, one caller at a time enters the component (single flight);
//   callers that waited find the fresh token without a second exchange.
// - Every call has a deadline on the component's own time (time spent in the
//   capabilities does not count): past it, the worker is terminated and the
//   next call starts a fresh instance. The same happens after a trap.

import fs from 'node:fs';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';

import { getEnv, httpFetch, readFile, runCommand } from './capabilities.js';
import { WifError, fromComponent } from './errors.js';
import { DEFAULT_MAX_MEMORY_BYTES } from './memory.js';
import { HttpClient } from './net.js';
import { Policy } from './policy.js';

/** The component's JavaScript bindings, written by `npm run build` (jco). */
const BINDINGS = new URL('../generated/anthropic_wif.js', import.meta.url);
/** Default limit on the component's own (non-I/O) time per call. */
export const DEFAULT_CALL_BUDGET_MS = 5000;
/** The cap of the worker's JavaScript heap (the bindings and the strings passed), in MiB; the component's own memory is capped apart. */
const WORKER_HEAP_MB = 64;
/** How often the deadline is checked. */
const WATCHDOG_MS = 10;
/** The states of the shared control word (see worker-imports.js). */
const ANSWERED = 1;

/** The system's wall clock, in Unix seconds. */
export const systemClock = () => Date.now() / 1000;

/**
 * A provider of access tokens for `auth` configs.
 *
 * `policy`: a `Policy`, the path of a policy TOML file, or nothing (grant
 * nothing). `clock`: the wall clock the component reads (Unix seconds), for
 * tests. `callBudgetMs`: the deadline of one call on the component's own time.
 * `maxMemoryBytes`: the cap of the component's linear memory (a call that
 * needs more fails with a `component` error and the next call starts a fresh
 * instance). The proxy variables are read once, here.
 */
export function createProvider({
  policy,
  clock = systemClock,
  callBudgetMs = DEFAULT_CALL_BUDGET_MS,
  maxMemoryBytes = DEFAULT_MAX_MEMORY_BYTES,
} = {}) {
  if (policy === undefined) policy = new Policy();
  else if (!(policy instanceof Policy)) policy = Policy.fromFile(policy);
  return new Provider(policy, clock, { budget: callBudgetMs, maxMemoryBytes });
}

class Provider {
  #policy;
  #http;
  #clock;
  #budget;
  #maxMemoryBytes;
  #tokens = new Map();
  #queue = Promise.resolve();
  #live = null;
  #nextId = 1;

  constructor(policy, clock, { budget, maxMemoryBytes }) {
    this.#policy = policy;
    this.#http = new HttpClient(policy);
    this.#clock = clock;
    this.#budget = budget;
    this.#maxMemoryBytes = maxMemoryBytes;
  }

  /** The policy in force. */
  get policy() {
    return this.#policy;
  }

  /** A valid access token for `config` (the `auth` block, as JSON text or an object). */
  async getToken(config) {
    const text = configText(config);
    const cached = this.#cached(text);
    if (cached) return cached;
    return this.#exclusive(async () => {
      const again = this.#cached(text);
      if (again) return again;
      const answer = await this.#call('getToken', text);
      if (answer.tokenType.toLowerCase() !== 'bearer') {
        throw new WifError('malformed-response', `the component returned a token of type ${JSON.stringify(answer.tokenType)}, not Bearer`);
      }
      const token = new AccessToken(answer.token, Number(answer.expiresAt), Number(answer.refreshAfter));
      this.#tokens.set(text, token);
      return token;
    });
  }

  /** Drops the token cached for `config`, in the host and in the component. Call it after an API 401. */
  async invalidate(config) {
    const text = configText(config);
    return this.#exclusive(async () => {
      this.#tokens.delete(text);
      await this.#call('invalidate', text);
    });
  }

  /** Validates `config` and lists what it needs from the host: `{env, optionalEnv, files, origins, urls, whenSetUrls, commands}`. */
  async requirements(config) {
    const text = configText(config);
    return this.#exclusive(() => this.#call('requirements', text));
  }

  /** Stops the component's worker and closes idle connections; a later call starts a new worker. */
  async close() {
    await this.#exclusive(async () => {
      const live = this.#live;
      this.#live = null;
      if (live) await live.worker.terminate();
      await this.#http.close();
    });
  }

  #cached(text) {
    const token = this.#tokens.get(text);
    return token && this.#clock() < token.refreshAfter ? token : null;
  }

  #exclusive(work) {
    const run = this.#queue.then(work);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #start() {
    if (!fs.existsSync(BINDINGS)) {
      throw new WifError(
        'load',
        "cannot load the component: its bindings (generated/) are missing; in the package's folder run `npm run build` (installing runs it, unless install scripts are disabled)",
      );
    }
    const control = new SharedArrayBuffer(8);
    const largest = Math.max(this.#policy.maxBodyBytes, this.#policy.maxFileBytes, this.#policy.maxOutputBytes);
    const data = new SharedArrayBuffer(2 * largest + 1024 * 1024);
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: { control, data, maxMemoryBytes: this.#maxMemoryBytes },
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
    });
    const live = { worker, control: new Int32Array(control), data: new Uint8Array(data), pending: null, io: null };
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', (e) => reject(new WifError('load', `cannot load the component: ${e.message.split('\n')[0]}`)));
    });
    worker.on('message', (message) => this.#onMessage(live, message));
    worker.on('error', (e) => this.#fail(live, `it failed: ${e.message.split('\n')[0]}`));
    worker.on('exit', () => this.#fail(live, 'its worker exited'));
    worker.unref();
    return live;
  }

  async #call(fn, config) {
    if (!this.#live) this.#live = await this.#start();
    const live = this.#live;
    const id = this.#nextId++;
    live.worker.ref();
    try {
      const answer = await new Promise((resolve, reject) => {
        live.pending = { id, resolve, reject, started: performance.now(), ioTime: 0 };
        live.watchdog = setInterval(() => this.#watch(live), WATCHDOG_MS);
        live.worker.postMessage({ id, fn, config });
      });
      if ('err' in answer) throw fromComponent(answer.err);
      return answer.ok;
    } finally {
      clearInterval(live.watchdog);
      live.pending = null;
      if (this.#live === live) live.worker.unref();
    }
  }

  #watch(live) {
    const call = live.pending;
    if (!call) return;
    const io = live.io === null ? 0 : performance.now() - live.io;
    if (performance.now() - call.started - call.ioTime - io > this.#budget) {
      this.#fail(live, 'it ran past its time budget and was interrupted');
    }
  }

  /** Ends the instance: the pending call fails, the next one starts a fresh worker. */
  #fail(live, why) {
    if (this.#live === live) this.#live = null;
    const call = live.pending;
    live.pending = null;
    live.worker.terminate();
    if (call) call.reject(new WifError('component', `the component failed: ${why}`));
  }

  async #onMessage(live, message) {
    if (message.kind === 'answer') {
      const call = live.pending;
      if (!call || call.id !== message.id) return;
      if ('trap' in message) return this.#fail(live, `it trapped: ${message.trap}`);
      return call.resolve(message);
    }
    if (message.kind !== 'host-call') return;
    live.io = performance.now();
    let reply;
    try {
      reply = await this.#capability(message.op, message.args);
    } catch (e) {
      reply = { tag: 'err', val: { tag: 'failed', val: `the host failed: ${e?.name ?? 'error'}` } };
    }
    if (live.pending) live.pending.ioTime += performance.now() - live.io;
    live.io = null;
    let bytes = v8.serialize(reply);
    if (bytes.length > live.data.length) {
      bytes = v8.serialize({ tag: 'err', val: { tag: 'too-large', val: "the answer exceeds the host's transfer buffer" } });
    }
    live.data.set(bytes);
    Atomics.store(live.control, 1, bytes.length);
    Atomics.store(live.control, 0, ANSWERED);
    Atomics.notify(live.control, 0);
  }

  #capability(op, args) {
    const policy = this.#policy;
    switch (op) {
      case 'read-file':
        return readFile(policy, args[0]);
      case 'get-env':
        return getEnv(policy, args[0]);
      case 'http-fetch':
        return httpFetch(policy, this.#http, args[0]);
      case 'run-command':
        return runCommand(policy, args[0], args[1]);
      case 'now': {
        const now = this.#clock();
        const seconds = Math.floor(now);
        return { seconds, nanoseconds: Math.min(Math.floor((now - seconds) * 1e9), 999_999_999) };
      }
      default:
        throw new Error(`unknown host call ${op}`);
    }
  }
}

/** A short-lived Anthropic access token. Its `inspect` and JSON forms never show the token. */
export class AccessToken {
  #token;

  constructor(token, expiresAt, refreshAfter) {
    this.#token = token;
    this.tokenType = 'Bearer';
    this.expiresAt = expiresAt;
    this.refreshAfter = refreshAfter;
    Object.freeze(this);
  }

  /** The bearer token (`sk-ant-oat01-…`). A secret: never log it. */
  get token() {
    return this.#token;
  }

  toJSON() {
    return { token: '[redacted]', tokenType: this.tokenType, expiresAt: this.expiresAt, refreshAfter: this.refreshAfter };
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `AccessToken { token: '[redacted]', expiresAt: ${this.expiresAt}, refreshAfter: ${this.refreshAfter} }`;
  }
}

function configText(config) {
  return typeof config === 'string' ? config : JSON.stringify(config);
}
