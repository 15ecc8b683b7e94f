// The provider: the component on a worker thread, called from the
// application's thread.
//
// - `provider.client(config)` makes a `Client`: the component's `client`
//   resource for that config, validated once. Hold it and call `token()`;
//   `getToken(config)` and the other functions that take a config use a
//   client kept per config text.
// - Tokens are kept by the host until the component's `refresh-after`; until
//   then `token()` does not enter the component.
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
  #clients = new Map();
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

  /**
   * A prepared handle on `config` (the `auth` block, as JSON text or an
   * object), validated now: an invalid config rejects with an
   * `invalid-config` error. Every call with the same config gives the same
   * client.
   */
  async client(config) {
    const text = configText(config);
    const kept = this.#clients.get(text);
    if (kept) return kept;
    return this.#exclusive(async () => {
      const again = this.#clients.get(text);
      if (again) return again;
      await this.#call('open', text);
      const made = new Client({
        clock: this.#clock,
        exclusive: (work) => this.#exclusive(work),
        call: (fn, arg) => this.#call(fn, text, arg),
      });
      this.#clients.set(text, made);
      return made;
    });
  }

  /** A valid access token for `config`: `token()` of the client kept for it. */
  async getToken(config) {
    return (await this.client(config)).token();
  }

  /** `invalidate()` of the client kept for `config`; an invalid config has nothing to drop. */
  async invalidate(config) {
    let made;
    try {
      made = await this.client(config);
    } catch (e) {
      if (e instanceof WifError && e.code === 'invalid-config') return;
      throw e;
    }
    await made.invalidate();
  }

  /** Validates `config` and lists what it needs from the host: `{env, optionalEnv, files, origins, urls, whenSetUrls, commands}`. */
  async requirements(config) {
    return (await this.client(config)).requirements();
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

  async #call(fn, config, arg) {
    if (!this.#live) this.#live = await this.#start();
    const live = this.#live;
    const id = this.#nextId++;
    live.worker.ref();
    try {
      const answer = await new Promise((resolve, reject) => {
        live.pending = { id, resolve, reject, started: performance.now(), ioTime: 0 };
        live.watchdog = setInterval(() => this.#watch(live), WATCHDOG_MS);
        live.worker.postMessage({ id, fn, config, arg });
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

/**
 * A prepared handle on one config (the component's `client` resource), made
 * by `provider.client(config)`. The token is served from here until the
 * component's `refresh-after`; after that one caller at a time asks the
 * component. After a trap the resource is made again in the fresh instance.
 */
export class Client {
  #clock;
  #exclusive;
  #call;
  #token = null;

  constructor({ clock, exclusive, call }) {
    this.#clock = clock;
    this.#exclusive = exclusive;
    this.#call = call;
  }

  /** A valid access token: the one held until `refresh-after`, else the component's answer. */
  async token() {
    return this.tokenValidFor(0);
  }

  /**
   * A token valid for at least `seconds` more seconds when the component can
   * exchange for one: a held token with less time left is refreshed early;
   * when the identity token is the one already exchanged, the component
   * returns the token it holds (see `expiresAt`) rather than spend it again.
   */
  async tokenValidFor(seconds) {
    const held = this.#served(seconds);
    if (held) return held;
    return this.#exclusive(async () => {
      const again = this.#served(seconds);
      if (again) return again;
      const answer = seconds ? await this.#call('tokenValidFor', seconds) : await this.#call('token');
      if (answer.tokenType.toLowerCase() !== 'bearer') {
        throw new WifError('malformed-response', `the component returned a token of type ${JSON.stringify(answer.tokenType)}, not Bearer`);
      }
      this.#token = new AccessToken(answer.token, Number(answer.expiresAt), Number(answer.refreshAfter));
      return this.#token;
    });
  }

  /** Drops the token, here and in the component; the next call exchanges. */
  async invalidate() {
    return this.#exclusive(async () => {
      this.#token = null;
      await this.#call('invalidate');
    });
  }

  /**
   * `invalidate()` only when `rejected` (the token an API 401 refused) is the
   * token held: when another caller has already replaced it, nothing is
   * dropped, so many requests refused with one token lead to one exchange.
   */
  async invalidateRejected(rejected) {
    return this.#exclusive(async () => {
      if (this.#token && this.#token.token !== rejected) return;
      this.#token = null;
      await this.#call('invalidateRejected', rejected);
    });
  }

  /** What the config needs from the host: `{env, optionalEnv, files, origins, urls, whenSetUrls, commands}`. */
  async requirements() {
    return this.#exclusive(() => this.#call('requirements'));
  }

  #served(seconds) {
    const token = this.#token;
    if (!token) return null;
    const now = this.#clock();
    return now < token.refreshAfter && token.expiresAt - now >= seconds ? token : null;
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return 'Client { [config held] }';
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
