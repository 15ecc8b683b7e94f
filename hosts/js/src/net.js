// The host's network, as the Rust host's (host-example/src/net): the route
// of each request chosen as curl chooses it (proxy.js), `CONNECT` through a
// proxy for https (undici's ProxyAgent), the trusted roots of tls.js, one
// deadline for the whole exchange, no redirects, a body cap, and failures
// explained in words that name the proxy or the certificate problem, never
// with a transport error's own text (it can quote the URL, and so an
// expanded secret) nor a proxy's credentials.

import dns from 'node:dns/promises';
import net from 'node:net';

import { Agent, Pool, ProxyAgent, Socks5ProxyAgent, request } from 'undici';

import { proxyEnv, select } from './proxy.js';
import { MIN_TLS_VERSION, rootsDescription, trustedRoots } from './tls.js';

/** A failure explained: `kind` is the capability error case (`failed`, `timeout`, `too-large`). */
export class NetError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'NetError';
    this.kind = kind;
  }
}

/** A duration as Rust's `Duration` debug form writes it: `30s`, `1.5s`, `500ms`. */
export function durationText(secs) {
  return secs >= 1 ? `${Number(secs.toFixed(9))}s` : `${Number((secs * 1000).toFixed(6))}ms`;
}

const failed = (message) => new NetError('failed', message);

/** A TLS failure with the proxy itself (not with the destination). */
class ProxyTlsError extends Error {
  constructor(cause) {
    super('TLS with the proxy failed');
    this.cause = cause;
  }
}

/**
 * HTTP for one policy: its proxy setting and CA files, the process's proxy
 * variables (read once, when the client is made), and one dispatcher per
 * proxy in use.
 */
export class HttpClient {
  #setting;
  #env;
  #caFiles;
  #timeoutSecs;
  #roots = null;
  #dispatchers = new Map();

  constructor(policy, env = proxyEnv()) {
    this.#setting = policy.proxy;
    this.#caFiles = policy.caFiles;
    this.#timeoutSecs = policy.httpTimeoutSecs;
    this.#env = env;
  }

  /** How a request to `origin` goes: `{direct}` or `{proxy, source}`; throws `RouteError`. */
  route(origin) {
    return select(this.#setting, this.#env, origin);
  }

  /**
   * Sends `{method, headers, body}` to `url` (of `origin`) and reads the
   * whole answer within the policy's deadline: `{status, headers, body}`.
   * Throws `NetError`.
   */
  async send(url, origin, { method, headers, body }, maxBodyBytes) {
    let route;
    try {
      route = this.route(origin);
    } catch (e) {
      throw failed(e.message);
    }
    const dispatcher = this.#dispatcher(route);
    const signal = AbortSignal.timeout(this.#timeoutSecs * 1000);
    try {
      // undici's `request` follows no redirect (that takes its redirect interceptor, not used here).
      const response = await request(url, { method, headers, body, dispatcher, signal });
      const chunks = [];
      let size = 0;
      for await (const chunk of response.body) {
        size += chunk.length;
        if (size > maxBodyBytes) {
          response.body.destroy();
          throw new NetError('too-large', `the response body exceeds ${maxBodyBytes} bytes`);
        }
        chunks.push(chunk);
      }
      const list = [];
      for (const [name, value] of Object.entries(response.headers)) {
        for (const one of Array.isArray(value) ? value : [value]) list.push({ name, value: one });
      }
      return { status: response.statusCode, headers: list, body: new Uint8Array(Buffer.concat(chunks)) };
    } catch (e) {
      if (e instanceof NetError) throw e;
      if (signal.aborted) throw new NetError('timeout', `no complete answer within ${durationText(this.#timeoutSecs)}`);
      throw explain(e, origin, route, this.#caFiles);
    }
  }

  /** Stops every dispatcher; idle connections close. */
  async close() {
    const all = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(all.map((d) => d.close().catch(() => {})));
  }

  #tls() {
    if (this.#roots === null) {
      try {
        this.#roots = trustedRoots(this.#caFiles);
      } catch (e) {
        throw failed(`cannot load the trusted CA certificates: ${e.message}`);
      }
    }
    return { ca: this.#roots, minVersion: MIN_TLS_VERSION };
  }

  #dispatcher(route) {
    const key = route.proxy ? route.proxy.expose() : '';
    let dispatcher = this.#dispatchers.get(key);
    if (dispatcher) return dispatcher;
    const tls = this.#tls();
    if (!route.proxy) {
      dispatcher = new Agent({ connect: tls });
    } else if (route.proxy.scheme.startsWith('socks')) {
      dispatcher = socksAgent(route.proxy, tls);
    } else {
      dispatcher = new ProxyAgent({
        uri: route.proxy.expose(),
        requestTls: tls,
        proxyTls: tls,
        // The connection to the proxy: its TLS failures are told apart from the destination's.
        clientFactory: (origin, options) => new Pool(origin, { ...options, connect: markProxyTls(options.connect) }),
      });
    }
    this.#dispatchers.set(key, dispatcher);
    return dispatcher;
  }
}

/**
 * A SOCKS5 agent (undici's, experimental): `socks5h://` lets the proxy
 * resolve the destination's name, `socks5://` resolves it here and hands the
 * proxy the address, as curl does; TLS to the destination still checks the
 * name.
 */
function socksAgent(proxy, tls) {
  const agent = new Socks5ProxyAgent(proxy.expose().replace(/^socks5h?:/, 'socks5:'), { requestTls: tls });
  if (proxy.scheme === 'socks5') {
    const connect = agent.createSocks5Connection.bind(agent);
    agent.createSocks5Connection = async (host, port) => {
      if (net.isIP(host)) return connect(host, port);
      let address;
      try {
        ({ address } = await dns.lookup(host));
      } catch (e) {
        throw Object.assign(new Error('the destination was not found'), { code: e.code, destinationDns: true });
      }
      return connect(address, port);
    };
  }
  return agent;
}

function markProxyTls(connect) {
  return (options, callback) =>
    connect(options, (error, socket) => callback(error && isTlsCode(error.code) ? new ProxyTlsError(error) : error, socket));
}

const UNKNOWN_ISSUER = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
]);

function isTlsCode(code) {
  return typeof code === 'string' && (UNKNOWN_ISSUER.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT'));
}

/** Explains a certificate or handshake failure with `host`, as the Rust host's `explain_tls`. */
export function explainTls(code, host, caFiles = []) {
  if (UNKNOWN_ISSUER.has(code)) {
    return (
      `TLS: the certificate of ${host} is signed by an unknown certificate authority (unknown issuer). ` +
      "On a network with a TLS-inspecting proxy (the usual cause) trust that proxy's CA: " +
      `set SSL_CERT_FILE to a PEM bundle that includes it, or add it to the policy's [http] ca_files (trusted now: ${rootsDescription(caFiles)})`
    );
  }
  switch (code) {
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS: the certificate presented by ${host} is not valid for the name ${host} (name mismatch)`;
    case 'CERT_HAS_EXPIRED':
      return `TLS: the certificate of ${host} has expired (or this machine's clock is wrong)`;
    case 'CERT_NOT_YET_VALID':
      return `TLS: the certificate of ${host} is not valid yet (or this machine's clock is wrong)`;
    case 'CERT_REVOKED':
      return `TLS: the certificate of ${host} is revoked`;
    default:
      return code.includes('CERT') ? `TLS: the certificate of ${host} was rejected (${code})` : `TLS handshake with ${host} failed: ${code}`;
  }
}

/** Explains a proxy's refusal of `CONNECT` with `status`. */
export function explainConnectRefusal(status, proxy, origin) {
  const head = `proxy ${proxy} refused the tunnel to ${origin.text}`;
  if (status === 407 && proxy.hasCredentials) return `${head}: 407 Proxy Authentication Required (its credentials were not accepted)`;
  if (status === 407) {
    return `${head}: 407 Proxy Authentication Required; put credentials in the proxy URL, e.g. http://user:password@host:port`;
  }
  if (status === 403) return `${head}: 403 Forbidden (the proxy's rules do not allow this destination)`;
  return `${head} with status ${status}`;
}

/** Explains a SOCKS5 proxy's refusal (undici's `UND_ERR_SOCKS5_*` codes; their messages hold no secret). */
function explainSocksRefusal(code, message, proxy, origin) {
  if (code === 'UND_ERR_SOCKS5_AUTH_FAILED') return `proxy ${proxy} refused its credentials (SOCKS5 authentication failed)`;
  if (code === 'UND_ERR_SOCKS5_AUTH_REJECTED') {
    return `proxy ${proxy} accepts none of the offered SOCKS5 authentication methods; put credentials in the proxy URL, e.g. socks5h://user:password@host:port`;
  }
  return `proxy ${proxy} did not open a connection to ${origin.text} (${message.replace(/^SOCKS5 connection failed: /, '')})`;
}

const CONNECT_FAILURES = {
  ECONNREFUSED: 'connection refused',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
};

/** A failed request to `origin` by `route`, explained. */
function explain(error, origin, route, caFiles) {
  const proxy = route.proxy ?? null;
  if (error instanceof ProxyTlsError) {
    return failed(`proxy ${proxy}: ${explainTls(error.cause.code, proxy.host, caFiles)}`);
  }
  if (error?.code === 'UND_ERR_PRX_TLS' && error.cause) error = error.cause;
  const code = error?.code;
  const refused = /^Proxy response \((\d+)\) !== 200/.exec(error?.message ?? '');
  if (proxy && refused) return failed(explainConnectRefusal(Number(refused[1]), proxy, origin));
  if (typeof code === 'string' && code.startsWith('UND_ERR_SOCKS5')) return failed(explainSocksRefusal(code, error.message, proxy, origin));
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
    return failed(proxy && !error.destinationDns ? `DNS: the proxy host ${proxy.host} was not found (proxy ${proxy})` : `DNS: the host ${origin.host} was not found`);
  }
  if (code in CONNECT_FAILURES) {
    if (proxy) return failed(`proxy ${proxy} is unreachable (${CONNECT_FAILURES[code]})`);
    return failed(`cannot connect to ${origin.text} (${CONNECT_FAILURES[code]})`);
  }
  if (isTlsCode(code)) return failed(explainTls(code, origin.host, caFiles));
  if (code === 'UND_ERR_HEADERS_OVERFLOW') return new NetError('too-large', 'the response headers are too large');
  if (typeof code === 'string' && code.startsWith('HPE_')) return failed('the server broke the HTTP protocol');
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') {
    return failed(proxy ? `the connection through proxy ${proxy} closed before a complete answer` : 'the connection closed before a complete answer');
  }
  if (proxy?.scheme.startsWith('socks') && /Username and password required/.test(error?.message ?? '')) {
    return failed(`proxy ${proxy} requires SOCKS5 credentials; put them in the proxy URL, e.g. socks5h://user:password@host:port`);
  }
  if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_URL') return failed('the request is not valid HTTP');
  return failed(code ? `I/O error: ${code}` : 'the request failed');
}
