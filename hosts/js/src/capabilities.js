// The four capabilities, as the host grants them under a policy. They run
// on the provider's thread (asynchronously); the component, on its worker,
// waits for each answer. Every result is `{tag: 'ok', val}` or
// `{tag: 'err', val: {tag: <cap-error case>, val: detail}}`, the shape jco
// lowers for `result<T, cap-error>`.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { originOf } from './policy.js';

/** Variables every child gets, besides those the policy grants. */
export const BASE_ENV = ['PATH', 'HOME'];

const ok = (val) => ({ tag: 'ok', val });
const capError = (tag, detail) => ({ tag: 'err', val: { tag, val: detail } });

/** A name from the component, safe to put in a message: control characters escaped, bounded. */
export function printable(text) {
  // eslint-disable-next-line no-control-regex
  const escaped = String(text).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
  return `\`${escaped.slice(0, 200)}\``;
}

/** `read-file`: granted paths only, symlinks resolved before the check, opened without following links. */
export function readFile(policy, requested) {
  const shown = printable(requested);
  if (!path.isAbsolute(requested)) return capError('denied', `path ${shown} is relative; only absolute paths are granted`);
  let real;
  try {
    real = fs.realpathSync(requested);
  } catch (e) {
    if (e.code === 'ENOENT' && policy.allowsFileLexically(requested)) return capError('not-found', `${shown} does not exist`);
    return capError('denied', `path ${shown} is not granted`);
  }
  // Where a symlink leads is not told: it can name a file the caller may not know of.
  if (!policy.allowsFile(real)) return capError('denied', `path ${shown} is not granted`);
  let fd;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    return fileFailure(shown, e);
  }
  try {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) !== real) return capError('denied', `path ${shown} changed while it was being opened`);
    } catch {
      // No /proc: nothing more to compare.
    }
    const meta = fs.fstatSync(fd);
    if (meta.isDirectory()) return capError('is-directory', `${shown} is a directory`);
    if (!meta.isFile()) return capError('failed', `${shown} is not a regular file`);
    const buffer = Buffer.alloc(policy.maxFileBytes + 1);
    let length = 0;
    for (;;) {
      const n = fs.readSync(fd, buffer, length, buffer.length - length, null);
      length += n;
      if (n === 0 || length === buffer.length) break;
    }
    if (length > policy.maxFileBytes) return capError('too-large', `${shown} is larger than ${policy.maxFileBytes} bytes`);
    return ok(new Uint8Array(buffer.subarray(0, length)));
  } catch (e) {
    return fileFailure(shown, e);
  } finally {
    fs.closeSync(fd);
  }
}

function fileFailure(shown, e) {
  if (e.code === 'ENOENT') return capError('not-found', `${shown} does not exist`);
  if (e.code === 'EISDIR') return capError('is-directory', `${shown} is a directory`);
  return capError('failed', `reading ${shown} failed: ${e.code ?? 'I/O error'}`);
}

/** `get-env`: granted names only; `undefined` (none) when unset. */
export function getEnv(policy, name) {
  if (!policy.allowsEnv(name)) return capError('denied', `environment variable ${printable(name)} is not granted`);
  return ok(process.env[name]);
}

/** `http-fetch`: granted origins only, no redirects followed, no proxy, a body cap and one deadline for the whole exchange. */
export async function httpFetch(policy, request) {
  let url;
  try {
    url = new URL(request.url);
  } catch {
    return capError('failed', 'the URL is not valid');
  }
  if (url.username || url.password) return capError('denied', 'URLs with user information are never fetched');
  const origin = originOf(url);
  if (!origin) return capError('denied', 'only http and https URLs are fetched');
  if (!policy.allowsOrigin(origin)) return capError('denied', `origin ${origin.text} is not granted`);
  if (!['GET', 'POST', 'PUT'].includes(request.method)) {
    return capError('failed', `method ${printable(request.method)} is not supported`);
  }
  const signal = AbortSignal.timeout(policy.httpTimeoutSecs * 1000);
  try {
    const response = await fetch(url, {
      method: request.method,
      headers: request.headers.map((h) => [h.name, h.value]),
      body: request.method === 'GET' ? undefined : request.body,
      redirect: 'manual',
      signal,
    });
    const chunks = [];
    let size = 0;
    if (response.body) {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > policy.maxBodyBytes) {
          await reader.cancel();
          return capError('too-large', `the response body exceeds ${policy.maxBodyBytes} bytes`);
        }
        chunks.push(value);
      }
    }
    return ok({
      status: response.status,
      headers: [...response.headers].map(([name, value]) => ({ name, value })),
      body: new Uint8Array(Buffer.concat(chunks)),
    });
  } catch (e) {
    return transportError(e, signal, policy);
  }
}

/** A transport failure, never with the error's own text (it can quote the URL, and so an expanded secret). */
function transportError(error, signal, policy) {
  if (signal.aborted || error?.name === 'TimeoutError') {
    return capError('timeout', `no complete answer within ${policy.httpTimeoutSecs} s`);
  }
  const code = error?.cause?.code ?? error?.code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET') return capError('failed', 'connection failed');
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return capError('failed', 'host not found');
  if (typeof code === 'string' && (code.startsWith('ERR_TLS') || code.includes('CERT'))) return capError('failed', `TLS error: ${code}`);
  if (error instanceof TypeError && !error.cause) return capError('failed', 'the request is not valid HTTP');
  return capError('failed', code ? `I/O error: ${code}` : 'the request failed');
}

/** `run-command`: granted argv prefixes only, no shell, a minimal environment, a timeout that kills the process group, capped output. */
export function runCommand(policy, argv, timeoutMs) {
  const shown = printable(argv.join(' '));
  if (!policy.allowsCommand(argv)) return Promise.resolve(capError('denied', `command ${shown} is not granted`));
  const env = {};
  for (const name of [...BASE_ENV, ...policy.env]) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  const cap = policy.maxOutputBytes;
  const timeout = Math.min(timeoutMs, policy.commandTimeoutSecs * 1000);
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false });
    const outputs = [collect(child.stdout, cap), collect(child.stderr, cap)];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') resolve(capError('not-found', `program ${printable(argv[0])} not found`));
      else resolve(capError('failed', `command ${shown} could not start: ${e.code ?? 'error'}`));
    });
    child.on('exit', () => {
      // The command is done; anything it started and left running must not keep the pipes open.
      killGroup(child);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) return resolve(capError('timeout', `command ${shown} did not finish within ${timeout / 1000} s`));
      const [stdout, stderr] = outputs.map((o) => o.bytes());
      if (stdout.length > cap || stderr.length > cap) {
        return resolve(capError('too-large', `command ${shown} printed more than ${cap} bytes`));
      }
      resolve(ok({ exitCode: code ?? undefined, stdout, stderr }));
    });
  });
}

/** Keeps at most `cap + 1` bytes of a stream (one more than allowed, to tell "too large" from "exactly the cap"); drains the rest. */
function collect(stream, cap) {
  const chunks = [];
  let size = 0;
  stream.on('data', (chunk) => {
    if (size <= cap) {
      const part = chunk.subarray(0, cap + 1 - size);
      chunks.push(part);
      size += part.length;
    }
  });
  return { bytes: () => new Uint8Array(Buffer.concat(chunks)) };
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
