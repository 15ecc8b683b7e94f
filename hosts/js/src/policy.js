// The host's deny-by-default policy, read from the same TOML file as the
// Rust host's (`host-example/src/policy.rs`). Everything the file does not
// grant is denied; unknown keys, relative paths, origins with a path and
// plain-http origins off loopback are errors that name the key and say what
// to write.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';

import { ENV, ProxyUrl } from './proxy.js';
import { loadCaFile } from './tls.js';

/** Default time limit of one HTTP request, in seconds. */
export const DEFAULT_HTTP_TIMEOUT_SECS = 30;
/** Default cap of a response body: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Default time limit of one command, in seconds. */
export const DEFAULT_COMMAND_TIMEOUT_SECS = 30;
/** Default cap of a command's stdout and of its stderr: 1 MiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
/** Default cap of a file read: 1 MiB. */
export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

const KEYS = {
  env: ['allow'],
  files: ['allow', 'allow_prefixes', 'max_bytes'],
  http: ['allow_origins', 'timeout_secs', 'max_body_bytes', 'ca_files', 'proxy'],
  commands: ['allow', 'timeout_secs', 'max_output_bytes'],
};

/** A policy file that cannot be read or is invalid; the message names the key. */
export class PolicyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PolicyError';
  }
}

/**
 * The origin (`scheme://host[:port]`, default port left out) of an absolute
 * http(s) URL, as `{scheme, host, port, text}`; null for other schemes or
 * invalid URLs. Hosts are normalized as URLs normalize them (WHATWG).
 */
export function originOf(url) {
  let parsed;
  try {
    parsed = url instanceof URL ? url : new URL(url);
  } catch {
    return null;
  }
  const scheme = parsed.protocol.slice(0, -1);
  if ((scheme !== 'http' && scheme !== 'https') || !parsed.hostname) return null;
  const port = parsed.port ? Number(parsed.port) : scheme === 'https' ? 443 : 80;
  return { scheme, host: parsed.hostname, port, text: `${scheme}://${parsed.host}` };
}

function allowsPlainHttp(host) {
  if (host === 'localhost') return true;
  const bare = host.replace(/^\[|\]$/g, '');
  if (net.isIPv4(bare)) {
    const [a, b] = bare.split('.').map(Number);
    return a === 127 || (a === 169 && b === 254);
  }
  if (net.isIPv6(bare)) {
    return bare === '::1' || /^fe[89ab]/i.test(bare);
  }
  return false;
}

/** Parses a granted origin, with an error that names `key` and says what to write. */
export function parseOrigin(text, key) {
  if (typeof text !== 'string') throw new PolicyError(`policy: ${key}: must be a string like \`https://api.anthropic.com\``);
  if (!text.includes('://')) throw new PolicyError(`policy: ${key}: \`${text}\` has no scheme; write \`https://${text}\``);
  const origin = originOf(text);
  if (!origin) {
    throw new PolicyError(`policy: ${key}: \`${text}\` must be an http or https origin, e.g. \`https://api.anthropic.com\``);
  }
  const url = new URL(text);
  if (url.username || url.password) {
    throw new PolicyError(`policy: ${key}: \`${text}\` contains user information; write \`${origin.text}\``);
  }
  if (url.pathname !== '/' || url.search || url.hash || /[?#]$/.test(text)) {
    throw new PolicyError(`policy: ${key}: \`${text}\` has a path, query or fragment; an origin is \`${origin.text}\``);
  }
  if (origin.scheme === 'http' && !allowsPlainHttp(origin.host)) {
    throw new PolicyError(
      `policy: ${key}: \`${text}\` uses plain http; write \`https://${origin.host}\` (http is only granted for loopback and link-local addresses)`,
    );
  }
  return origin;
}

function list(table, key, name) {
  const value = table[key] ?? [];
  if (!Array.isArray(value)) throw new PolicyError(`policy: ${name}: must be an array, e.g. \`${key} = []\``);
  return value;
}

function strings(table, key, name) {
  const value = list(table, key, name);
  value.forEach((item, i) => {
    if (typeof item !== 'string') throw new PolicyError(`policy: ${name}[${i}]: must be a string`);
  });
  return value;
}

function paths(entries, key) {
  return entries.map((entry, i) => {
    if (!path.isAbsolute(entry)) {
      throw new PolicyError(`policy: ${key}[${i}]: \`${entry}\` is relative; write an absolute path like \`/${entry}\``);
    }
    if (entry.split('/').includes('..')) {
      throw new PolicyError(`policy: ${key}[${i}]: \`${entry}\` contains \`..\`; write the path without it`);
    }
    return path.normalize(entry);
  });
}

function caFiles(files) {
  files.forEach((file, i) => {
    try {
      loadCaFile(file);
    } catch (e) {
      throw new PolicyError(`policy: http.ca_files[${i}]: ${e.message}; list PEM files of CA certificates`);
    }
  });
  return files;
}

function proxySetting(value) {
  const what = 'write `"env"` (the proxy variables decide), `"none"` or a proxy URL such as `"http://proxy.example.com:3128"`';
  if (value === undefined || value === 'env') return ENV;
  if (value === 'none') return Object.freeze({ kind: 'none' });
  if (typeof value === 'string' && value.includes('://')) {
    try {
      return Object.freeze({ kind: 'pinned', proxy: ProxyUrl.parse(value) });
    } catch (e) {
      throw new PolicyError(`policy: http.proxy: the value ${e.message}; ${what}`);
    }
  }
  throw new PolicyError(`policy: http.proxy: unknown value; ${what}`);
}

function seconds(value, fallback, key) {
  if (value === undefined) return fallback;
  if (typeof value === 'bigint') value = Number(value);
  if (typeof value !== 'number' || !(value >= 0.001 && value <= 3600)) {
    throw new PolicyError(`policy: ${key}: must be a number of seconds from 0.001 to 3600, e.g. \`30\``);
  }
  return value;
}

function positive(value, fallback, key) {
  if (value === undefined) return fallback;
  if (typeof value === 'bigint') value = Number(value);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new PolicyError(`policy: ${key}: must be a whole number of bytes`);
  }
  if (value === 0) throw new PolicyError(`policy: ${key}: must be above 0`);
  return value;
}

function canonicalOrSelf(p) {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

function within(child, folder) {
  return child === folder || child.startsWith(folder.endsWith('/') ? folder : `${folder}/`);
}

/** A validated policy. `new Policy()` grants nothing. */
export class Policy {
  constructor(fields = {}) {
    this.env = fields.env ?? [];
    this.files = fields.files ?? [];
    this.filePrefixes = fields.filePrefixes ?? [];
    this.maxFileBytes = fields.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.origins = fields.origins ?? [];
    this.httpTimeoutSecs = fields.httpTimeoutSecs ?? DEFAULT_HTTP_TIMEOUT_SECS;
    this.maxBodyBytes = fields.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.caFiles = fields.caFiles ?? [];
    this.proxy = fields.proxy ?? ENV;
    this.commands = fields.commands ?? [];
    this.commandTimeoutSecs = fields.commandTimeoutSecs ?? DEFAULT_COMMAND_TIMEOUT_SECS;
    this.maxOutputBytes = fields.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    Object.freeze(this);
  }

  /** Reads and validates a policy file. */
  static fromFile(file) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new PolicyError(`cannot read policy file ${file}: ${e.code ?? e.message}`);
    }
    return Policy.fromToml(text);
  }

  /** Parses and validates the TOML text of a policy. */
  static fromToml(text) {
    let raw;
    try {
      raw = parseToml(text, { integersAsBigInt: false });
    } catch (e) {
      throw new PolicyError(`policy: ${e.message.split('\n')[0]}`);
    }
    for (const [table, value] of Object.entries(raw)) {
      if (!(table in KEYS)) throw new PolicyError(`policy: unknown table \`${table}\`, expected one of env, files, http, commands`);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new PolicyError(`policy: ${table}: must be a table, e.g. \`[${table}]\``);
      }
      for (const key of Object.keys(value)) {
        if (!KEYS[table].includes(key)) {
          throw new PolicyError(`policy: unknown key \`${table}.${key}\`, expected one of ${KEYS[table].join(', ')}`);
        }
      }
    }
    const { env = {}, files = {}, http = {}, commands = {} } = raw;
    return new Policy({
      env: strings(env, 'allow', 'env.allow').map((name, i) => {
        if (!name || name.includes('=') || name.includes('\0')) {
          throw new PolicyError(`policy: env.allow[${i}]: must be a variable name, without \`=\` or NUL; write e.g. \`"MY_TOKEN"\``);
        }
        return name;
      }),
      files: paths(strings(files, 'allow', 'files.allow'), 'files.allow'),
      filePrefixes: paths(strings(files, 'allow_prefixes', 'files.allow_prefixes'), 'files.allow_prefixes'),
      maxFileBytes: positive(files.max_bytes, DEFAULT_MAX_FILE_BYTES, 'files.max_bytes'),
      origins: strings(http, 'allow_origins', 'http.allow_origins').map((o, i) => parseOrigin(o, `http.allow_origins[${i}]`)),
      httpTimeoutSecs: seconds(http.timeout_secs, DEFAULT_HTTP_TIMEOUT_SECS, 'http.timeout_secs'),
      maxBodyBytes: positive(http.max_body_bytes, DEFAULT_MAX_BODY_BYTES, 'http.max_body_bytes'),
      caFiles: caFiles(paths(strings(http, 'ca_files', 'http.ca_files'), 'http.ca_files')),
      proxy: proxySetting(http.proxy),
      commands: list(commands, 'allow', 'commands.allow').map((argv, i) => {
        const key = `commands.allow[${i}]`;
        if (!Array.isArray(argv) || argv.length === 0) {
          throw new PolicyError(`policy: ${key}: must name at least the program, e.g. \`["gcloud", "auth", "print-identity-token"]\``);
        }
        argv.forEach((arg, j) => {
          if (typeof arg !== 'string' || !arg || arg.includes('\0')) {
            throw new PolicyError(`policy: ${key}[${j}]: must be a non-empty argument without NUL`);
          }
        });
        return argv;
      }),
      commandTimeoutSecs: seconds(commands.timeout_secs, DEFAULT_COMMAND_TIMEOUT_SECS, 'commands.timeout_secs'),
      maxOutputBytes: positive(commands.max_output_bytes, DEFAULT_MAX_OUTPUT_BYTES, 'commands.max_output_bytes'),
    });
  }

  /** Whether the variable `name` may be read. */
  allowsEnv(name) {
    return this.env.includes(name);
  }

  /** Whether the canonical path `real` may be read. */
  allowsFile(real) {
    return this.files.some((p) => canonicalOrSelf(p) === real) || this.filePrefixes.some((p) => within(real, canonicalOrSelf(p)));
  }

  /** Whether `p` is granted as written; only used to tell "not found" from "denied". */
  allowsFileLexically(p) {
    if (p.split('/').includes('..')) return false;
    return this.files.includes(p) || this.filePrefixes.some((prefix) => within(p, prefix));
  }

  /** Whether `origin` (from `originOf`) may be fetched. */
  allowsOrigin(origin) {
    return this.origins.some((o) => o.scheme === origin.scheme && o.host === origin.host && o.port === origin.port);
  }

  /** Whether `argv` starts with a granted prefix, element by element. */
  allowsCommand(argv) {
    return this.commands.some((prefix) => prefix.length <= argv.length && prefix.every((arg, i) => argv[i] === arg));
  }
}
