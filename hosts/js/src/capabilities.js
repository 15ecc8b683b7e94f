// The four capabilities, as the host grants them under a policy. They run
// on the provider's thread (asynchronously); the component, on its worker,
// waits for each answer. Every result is `{tag: 'ok', val}` or
// `{tag: 'err', val: {tag: <cap-error case>, val: detail}}`, the shape jco
// lowers for `result<T, cap-error>`.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { NetError, durationText } from './net.js';
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
    let opened = null;
    try {
      opened = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch (e) {
      // Skipped only where /proc is not mounted; any other failure fails closed.
      if (isDirectory('/proc/self/fd')) return capError('failed', `reading ${shown} failed: the opened file cannot be checked (${e.code ?? 'error'})`);
    }
    if (opened !== null && opened !== real) return capError('denied', `path ${shown} changed while it was being opened`);
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

function isDirectory(p) {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
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

/** The headers the HTTP client sets itself (the Rust host's net/headers.rs): hop-by-hop ones, `Host`, `Content-Length`, `Expect`, and any `Proxy-*`. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/** Whether `name` (lower case) is a header the HTTP client sets itself and a component may not give. */
export function isSetByClient(name) {
  return HOP_BY_HOP.includes(name) || ['host', 'content-length', 'expect'].includes(name) || name.startsWith('proxy-');
}

/** Refuses, before any connection, a header the client sets itself, a name that is not an RFC 7230 token and a value with a line break or NUL. */
function checkHeaders(headers) {
  for (const { name, value } of headers) {
    if (isSetByClient(name.toLowerCase())) {
      return capError('denied', `header ${printable(name)} is set by the HTTP client and cannot be given by a component`);
    }
    if (!/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(name)) return capError('failed', `header name ${printable(name)} is not a valid HTTP header name`);
    if (/[\r\n\0]/.test(value)) return capError('failed', `header ${printable(name)} has a line break or NUL in its value`);
  }
  return null;
}

/** `http-fetch`: granted origins only, no redirects followed, the route and trust of `client`, a body cap and one deadline for the whole exchange. */
export async function httpFetch(policy, client, request) {
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
  const refused = checkHeaders(request.headers);
  if (refused) return refused;
  if (!['GET', 'POST', 'PUT'].includes(request.method)) {
    return capError('failed', `method ${printable(request.method)} is not supported`);
  }
  try {
    const headers = request.headers.flatMap((h) => [h.name, h.value]);
    const body = request.method === 'GET' ? undefined : Buffer.from(request.body);
    return ok(await client.send(url, origin, { method: request.method, headers, body }, policy.maxBodyBytes));
  } catch (e) {
    if (e instanceof NetError) return capError(e.kind, e.message);
    return capError('failed', 'the request failed');
  }
}

/** `run-command`: granted argv prefixes only, no shell, a minimal environment, a timeout that kills the process group, capped output. */
export function runCommand(policy, argv, timeoutMs) {
  const shown = printable(argv.join(' '));
  if (!policy.allowsCommand(argv)) return Promise.resolve(capError('denied', `command ${shown} is not granted`));
  const env = {};
  const granted = [];
  for (const name of BASE_ENV) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  for (const name of policy.env) {
    if (process.env[name] !== undefined) {
      env[name] = process.env[name];
      granted.push(Buffer.from(process.env[name]));
    }
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
      if (timedOut) return resolve(capError('timeout', `command ${shown} did not finish within ${durationText(timeout / 1000)}`));
      const [stdout, stderr] = outputs.map((o) => o.bytes());
      if (stdout.length > cap || stderr.length > cap) {
        return resolve(capError('too-large', `command ${shown} printed more than ${cap} bytes`));
      }
      // The child got the granted variables and may print them (a helper under
      // `set -x`); the component may quote its stderr in an error, so the values
      // it was given are hidden. Stdout, the token, is left as it is.
      resolve(ok({ exitCode: code ?? undefined, stdout, stderr: redactValues(stderr, granted) }));
    });
  });
}

/** Values shorter than this are not hidden: they carry no secret worth the name, and hiding them would garble every message. */
const MIN_SECRET_BYTES = 4;

/** `text` with every occurrence of each of `values` replaced by `[redacted]`, longest value first. */
export function redactValues(text, values) {
  const sorted = values.filter((v) => v.length >= MIN_SECRET_BYTES).sort((a, b) => b.length - a.length);
  let out = Buffer.from(text);
  for (const value of sorted) {
    const parts = [];
    let from = 0;
    for (let at = out.indexOf(value, from); at >= 0; at = out.indexOf(value, from)) {
      parts.push(out.subarray(from, at), REDACTED);
      from = at + value.length;
    }
    parts.push(out.subarray(from));
    out = Buffer.concat(parts);
  }
  return new Uint8Array(out);
}

const REDACTED = Buffer.from('[redacted]');

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
