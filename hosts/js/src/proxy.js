// Proxy selection as curl does it, per request (the Rust host's
// host-example/src/net/proxy.rs, ported). For `https` URLs `https_proxy`
// then `HTTPS_PROXY`; for `http` URLs `http_proxy` only (never `HTTP_PROXY`,
// which a CGI server sets from a request header); then `all_proxy`,
// `ALL_PROXY`. `no_proxy` (or `NO_PROXY`) lists destinations reached
// directly. Loopback and link-local destinations are never proxied. The
// policy decides whether the environment is read at all (`[http] proxy`).

import net from 'node:net';

/** Schemes a proxy URL may have. */
export const PROXY_SCHEMES = ['http', 'https', 'socks5', 'socks5h'];

/** The variables read, in the order curl consults them. */
export const PROXY_VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'];

/** Why a text is not a proxy URL: the predicate of a sentence whose subject the caller names; never quotes the URL. */
export class ProxyUrlError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProxyUrlError';
  }
}

/**
 * A proxy URL. Its credentials never show: `String(proxy)` and `inspect`
 * give `scheme://host:port` only; `expose()` is for the HTTP client only.
 */
export class ProxyUrl {
  #url;

  constructor(url) {
    this.#url = url;
    Object.freeze(this);
  }

  /** Parses a proxy URL; without a scheme it is `http://`, as curl reads it. Throws `ProxyUrlError`. */
  static parse(text) {
    text = String(text).trim();
    let url;
    try {
      url = new URL(text.includes('://') ? text : `http://${text}`);
    } catch {
      throw new ProxyUrlError('is not a valid proxy URL');
    }
    const scheme = url.protocol.slice(0, -1);
    if (!PROXY_SCHEMES.includes(scheme)) {
      throw new ProxyUrlError(`has scheme \`${scheme}\`; a proxy is \`http://\`, \`https://\`, \`socks5://\` or \`socks5h://\``);
    }
    if (!url.hostname) throw new ProxyUrlError('has no host; write e.g. `http://proxy.example.com:3128`');
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || /\?$/.test(text)) {
      throw new ProxyUrlError('has a path or query; a proxy is `scheme://[user:password@]host:port`');
    }
    return new ProxyUrl(url);
  }

  /** `http`, `https`, `socks5` or `socks5h`. */
  get scheme() {
    return this.#url.protocol.slice(0, -1);
  }

  /** The host (an IPv6 address in brackets). */
  get host() {
    return this.#url.hostname;
  }

  /** The port, defaulting as curl does (1080 for SOCKS, 80/443 for HTTP). */
  get port() {
    if (this.#url.port) return Number(this.#url.port);
    return { https: 443, http: 80 }[this.scheme] ?? 1080;
  }

  /** Whether the URL carries a user name or password. */
  get hasCredentials() {
    return Boolean(this.#url.username || this.#url.password);
  }

  /** The whole URL, credentials included, for the HTTP client only. Never log it. */
  expose() {
    const url = new URL(this.#url.href);
    url.port = String(this.port);
    return url.href.replace(/\/$/, '');
  }

  toString() {
    return `${this.scheme}://${this.host}:${this.port}`;
  }

  toJSON() {
    return this.toString();
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `ProxyUrl(${this}${this.hasCredentials ? ', with credentials' : ''})`;
  }
}

/** Why no route could be chosen: a proxy variable is not a proxy URL. Names the variable, never its value. */
export class RouteError extends Error {
  constructor(variable, problem) {
    super(`proxy variable ${variable} ${problem.message}`);
    this.name = 'RouteError';
    this.variable = variable;
  }
}

/** What the policy says: `{kind: 'env'}`, `{kind: 'none'}` or `{kind: 'pinned', proxy}`. */
export const ENV = Object.freeze({ kind: 'env' });

/** The proxy variables of `lookup` (default: this process), read once; empty values count as unset. */
export function proxyEnv(lookup = (name) => process.env[name]) {
  const vars = new Map();
  for (const name of PROXY_VARIABLES) {
    const value = lookup(name);
    if (value !== undefined && value.trim() !== '') vars.set(name, value);
  }
  return vars;
}

function first(env, names) {
  for (const name of names) if (env.has(name)) return [name, env.get(name)];
  return null;
}

/**
 * The route to `destination` (`{scheme, host, port}`, host as a URL
 * writes it): `{direct: why}` or `{proxy, source}`. Throws `RouteError`.
 */
export function select(setting, env, destination) {
  if (isLocal(destination.host)) return { direct: 'loopback and link-local destinations are never proxied' };
  if (setting.kind === 'none') return { direct: 'the policy sets http.proxy = "none"' };
  if (setting.kind === 'pinned') return { proxy: setting.proxy, source: 'http.proxy (policy)' };
  const names = destination.scheme === 'https' ? ['https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'] : ['http_proxy', 'all_proxy', 'ALL_PROXY'];
  const found = first(env, names);
  if (!found) return { direct: `none of ${names.join(', ')} is set` };
  const list = first(env, ['no_proxy', 'NO_PROXY']);
  if (list) {
    const entry = noProxyMatch(list[1], destination);
    if (entry !== null) return { direct: `${list[0]} entry \`${entry}\` matches` };
  }
  const [variable, value] = found;
  try {
    return { proxy: ProxyUrl.parse(value), source: variable };
  } catch (problem) {
    throw new RouteError(variable, problem);
  }
}

/** The first entry of a `no_proxy` list that matches `destination`, as written (trimmed); null if none. */
export function noProxyMatch(list, destination) {
  const host = destination.host.toLowerCase();
  const hostIp = parseIp(host);
  for (const raw of list.split(',')) {
    const entry = raw.trim();
    if (entry && entryMatches(entry, host, hostIp, destination.port)) return entry;
  }
  return null;
}

function entryMatches(entry, host, hostIp, port) {
  if (entry === '*') return true;
  const [pattern, wantedPort] = splitPort(entry.toLowerCase());
  if (wantedPort !== null && wantedPort !== port) return false;
  const slash = pattern.indexOf('/');
  if (slash >= 0) {
    const network = parseIp(pattern.slice(0, slash));
    const bitsText = pattern.slice(slash + 1);
    const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
    return hostIp !== null && network !== null && bits <= 255 && inCidr(hostIp, network, bits);
  }
  const patternIp = parseIp(pattern);
  if (patternIp !== null) return hostIp !== null && hostIp.kind === patternIp.kind && hostIp.value === patternIp.value;
  const domain = pattern.replace(/^\.+/, '');
  return domain !== '' && (host === domain || (host.endsWith(domain) && host.slice(0, -domain.length).endsWith('.')));
}

/** Splits an optional `:port` off an entry (`[v6]:port` too; a bare IPv6 address has no port). */
function splitPort(entry) {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close >= 0) {
      const after = entry.slice(close + 1);
      return [entry.slice(1, close), after.startsWith(':') ? portOf(after.slice(1)) : null];
    }
  }
  const colon = entry.lastIndexOf(':');
  if (colon < 0) return [entry, null];
  const pattern = entry.slice(0, colon);
  if (pattern.includes(':')) return [entry, null];
  const port = portOf(entry.slice(colon + 1));
  return port === null ? [entry, null] : [pattern, port];
}

function portOf(text) {
  return /^\d{1,5}$/.test(text) && Number(text) <= 65535 ? Number(text) : null;
}

/** An IP address as `{kind: 4|6, value: BigInt}`, brackets or not; null for a name. */
function parseIp(text) {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (net.isIPv4(bare)) return { kind: 4, value: bare.split('.').reduce((n, part) => (n << 8n) | BigInt(part), 0n) };
  if (net.isIPv6(bare)) return { kind: 6, value: ipv6Value(bare) };
  return null;
}

function ipv6Value(text) {
  let groups = text;
  const dotted = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const v4 = parseIp(dotted[1]).value;
    groups = `${text.slice(0, -dotted[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = groups.includes('::') ? groups.split('::') : [groups, null];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const all = tail === null ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return all.reduce((n, group) => (n << 16n) | BigInt(`0x${group}`), 0n);
}

function inCidr(ip, network, bits) {
  if (ip.kind !== network.kind) return false;
  const width = ip.kind === 4 ? 32 : 128;
  if (bits > width) return false;
  const shift = BigInt(width - bits);
  return ip.value >> shift === network.value >> shift;
}

/**
 * Whether `host` is on this machine or its link: `localhost` and names
 * under it, 127.0.0.0/8, ::1, 169.254.0.0/16, fe80::/10, and IPv4-mapped
 * forms of those. Names are never resolved.
 */
export function isLocal(host) {
  const ip = parseIp(host);
  if (ip === null) {
    const name = host.replace(/\.$/, '').toLowerCase();
    return name === 'localhost' || name.endsWith('.localhost');
  }
  if (ip.kind === 4) return isLocalV4(ip.value);
  if (ip.value === 1n || ip.value >> 118n === 0x3fan) return true;
  return ip.value >> 32n === 0xffffn && isLocalV4(ip.value & 0xffffffffn);
}

function isLocalV4(value) {
  return value >> 24n === 127n || value >> 16n === 0xa9fen;
}
