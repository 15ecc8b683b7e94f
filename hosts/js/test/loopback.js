// Loopback HTTP servers for the tests, on 127.0.0.1 only: a token endpoint
// that answers as the real one does, and an identity server with the paths
// the shared scenario table names.

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

/** How long /slow of the identity server waits before answering. */
export const SLOW_MS = 3000;
const ONE_MIB = 1024 * 1024;

/** A server that records requests and answers with `answer(recorded)` → `{status, headers, body}`. */
export class Loopback {
  constructor(answer) {
    this.requests = [];
    this.servers = [];
    this.handler = (req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const recorded = { method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks) };
        this.requests.push(recorded);
        const { status, headers = {}, body = '' } = await answer(recorded);
        const bytes = Buffer.from(body);
        res.writeHead(status, { ...headers, 'content-length': bytes.length });
        res.end(bytes);
      });
    };
    this.server = http.createServer(this.handler);
    this.servers.push(this.server);
  }

  async start() {
    await listen(this.server);
    return this;
  }

  /** Also answers over HTTPS with `{key, cert}` (same answers, same records); the origin is `tlsOrigin`. */
  async startTls(identity) {
    this.tlsServer = https.createServer(identity, this.handler);
    this.servers.push(this.tlsServer);
    await listen(this.tlsServer);
    return this;
  }

  get origin() {
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  /** `https://127.0.0.1:PORT` of the HTTPS front. */
  get tlsOrigin() {
    return `https://127.0.0.1:${this.tlsServer.address().port}`;
  }

  /** The port of the HTTPS front. */
  get tlsPort() {
    return this.tlsServer.address().port;
  }

  async close() {
    await Promise.all(this.servers.map(closeServer));
  }
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

async function closeServer(server) {
  server.closeAllConnections?.();
  await new Promise((resolve) => server.close(resolve));
}

/**
 * A CONNECT proxy (plain http, or https with `tls` = `{key, cert}`) that requires `Proxy-Authorization: Basic`
 * for `user`/`password` (407 otherwise), tunnels to the names of `hosts`
 * (resolved to 127.0.0.1; 502 for any other target) and counts every
 * CONNECT it receives.
 */
/** A server on 127.0.0.1 that keeps its sockets, to destroy them when it closes. */
class SocketServer {
  /** The sockets to destroy at `close`; subclasses set `this.server`. */
  sockets = new Set();

  async start() {
    await listen(this.server);
    return this;
  }

  /** `127.0.0.1:PORT`. */
  get address() {
    return `127.0.0.1:${this.server.address().port}`;
  }

  async close() {
    for (const socket of this.sockets) socket.destroy();
    await closeServer(this.server);
  }
}

export class ConnectProxy extends SocketServer {
  constructor({ user, password, hosts, tls = null }) {
    super();
    this.connects = 0;
    this.expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    this.scheme = tls ? 'https' : 'http';
    const refuseRequests = (req, res) => {
      res.writeHead(405, { connection: 'close' });
      res.end();
    };
    this.server = tls ? https.createServer(tls, refuseRequests) : http.createServer(refuseRequests);
    this.server.on('tlsClientError', () => {});
    this.server.on('connect', (req, client, head) => {
      this.connects += 1;
      this.sockets.add(client);
      client.on('error', () => {});
      const refuse = (status, text) => client.end(`HTTP/1.1 ${status} ${text}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      if (req.headers['proxy-authorization'] !== this.expected) return refuse(407, 'Proxy Authentication Required');
      const [host, port] = splitTarget(req.url);
      if (!hosts.includes(host) || !port) return refuse(502, 'Bad Gateway');
      const upstream = net.connect(port, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      this.sockets.add(upstream);
      upstream.on('error', () => refuse(502, 'Bad Gateway'));
    });
  }

}

function splitTarget(target) {
  const colon = target.lastIndexOf(':');
  return colon < 0 ? [target, null] : [target.slice(0, colon), Number(target.slice(colon + 1)) || null];
}

/** `127.0.0.1:PORT` where nothing listens (a port just bound and released). */
export async function downAddress() {
  const server = net.createServer();
  await listen(server);
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `127.0.0.1:${port}`;
}

/** A raw server that writes its response head one byte every `stepMs`, then `body`. */
export class DripServer extends SocketServer {
  constructor({ body = 'id-token-from-url', stepMs = 100 } = {}) {
    super();
    const head = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('error', () => {});
      let i = 0;
      const timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        if (i < head.length) socket.write(head[i++]);
        else {
          clearInterval(timer);
          socket.end(body);
        }
      }, stepMs);
      socket.on('close', () => clearInterval(timer));
    });
  }

  get origin() {
    return `http://${this.address}`;
  }
}

export const jsonReply = (status, body, headers = {}) => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** What the exchange does differently from the official SDKs, if anything. */
function exchangeProblem(request) {
  if (request.headers['content-type'] !== 'application/json') return 'content-type must be application/json';
  if (request.headers['anthropic-beta'] !== 'oauth-2025-04-20,oidc-federation-2026-04-01') {
    return 'anthropic-beta must be oauth-2025-04-20,oidc-federation-2026-04-01';
  }
  for (const forbidden of ['anthropic-version', 'x-api-key', 'authorization']) {
    if (forbidden in request.headers) return `the exchange must not send ${forbidden}`;
  }
  let body;
  try {
    body = JSON.parse(request.body);
  } catch {
    return 'the body is not JSON';
  }
  if (body.grant_type !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return 'grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer';
  for (const name of ['assertion', 'federation_rule_id', 'organization_id']) if (!body[name]) return `${name} is missing`;
  return null;
}

/** `POST /v1/oauth/token`; `behaviour` decides the next answers; the Nth exchange gets sk-ant-oat01-scenario-N. */
export class TokenEndpoint extends Loopback {
  constructor() {
    super((request) => this.#answer(request));
    this.behaviour = { status: 200, expires_in: 600 };
    this.exchanges = 0;
  }

  #answer(request) {
    if (request.method !== 'POST' || request.path !== '/v1/oauth/token') return jsonReply(404, { error: 'not_found' });
    this.exchanges += 1;
    const problem = exchangeProblem(request);
    if (problem) return jsonReply(400, { error: 'invalid_request', error_description: problem });
    if (this.behaviour.status !== 200) return jsonReply(this.behaviour.status, this.behaviour.body ?? {}, { 'request-id': 'req_scenario' });
    return jsonReply(200, {
      access_token: `sk-ant-oat01-scenario-${this.exchanges}`,
      expires_in: this.behaviour.expires_in,
      token_type: 'Bearer',
    });
  }

  get lastAssertion() {
    const posts = this.requests.filter((r) => r.method === 'POST');
    return posts.length ? JSON.parse(posts.at(-1).body).assertion : null;
  }
}

/** The identity server of the scenario table. */
export class IdentityServer extends Loopback {
  constructor() {
    super(async (request) => {
      switch (request.path.split('?')[0]) {
        case '/json':
          return jsonReply(200, { value: 'id-token-from-url' });
        case '/plain':
          return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'id-token-from-url\n' };
        case '/header':
          return jsonReply(200, { value: request.headers['x-scenario'] ?? '' });
        case '/redirect':
          return { status: 302, headers: { location: '/plain' } };
        case '/oversized':
          return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(ONE_MIB + 1) };
        case '/slow':
          await new Promise((resolve) => setTimeout(resolve, SLOW_MS).unref());
          return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'id-token-from-url' };
        default:
          return jsonReply(404, { error: 'not_found' });
      }
    });
  }
}

/** A wall clock that moves only when told to. */
export class ManualClock {
  constructor(start = 1_900_000_000) {
    this.now = start;
    this.read = () => this.now;
  }

  advance(seconds) {
    this.now += seconds;
  }
}

/**
 * A SOCKS5 proxy (RFC 1928, user/password authentication of RFC 1929 for
 * `user`/`password`) that connects to 127.0.0.1 for the names of `hosts` and
 * for 127.0.0.1 itself, refuses any other target (reply 2, not allowed), and
 * records each target as the client sent it.
 */
export class Socks5Proxy extends SocketServer {
  constructor({ user, password, hosts }) {
    super();
    this.targets = [];
    this.server = net.createServer((client) => {
      this.sockets.add(client);
      client.on('error', () => {});
      this.#serve(client, { user, password, hosts }).catch(() => client.destroy());
    });
  }

  async #serve(client, { user, password, hosts }) {
    const reader = byteReader(client);
    const [, methods] = await reader(2);
    const offered = await reader(methods);
    if (!offered.includes(2)) return client.end(Buffer.from([5, 0xff]));
    client.write(Buffer.from([5, 2]));
    const [, userLength] = await reader(2);
    const givenUser = (await reader(userLength)).toString();
    const [passwordLength] = await reader(1);
    const givenPassword = (await reader(passwordLength)).toString();
    if (givenUser !== user || givenPassword !== password) return client.end(Buffer.from([1, 1]));
    client.write(Buffer.from([1, 0]));
    const [, , , type] = await reader(4);
    let host;
    if (type === 1) host = [...(await reader(4))].join('.');
    else if (type === 3) host = (await reader((await reader(1))[0])).toString();
    else return client.end(Buffer.from([5, 8, 0, 1, 0, 0, 0, 0, 0, 0]));
    const port = (await reader(2)).readUInt16BE(0);
    this.targets.push(`${host}:${port}`);
    if (!hosts.includes(host) && host !== '127.0.0.1') return client.end(Buffer.from([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]));
    const upstream = net.connect(port, '127.0.0.1', () => {
      client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
      const rest = reader.rest();
      if (rest.length) upstream.write(rest);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    this.sockets.add(upstream);
    upstream.on('error', () => client.destroy());
  }

}

/** `read(n)` resolves with the next `n` bytes of `socket`; `read.rest()` takes what is buffered and stops reading. */
function byteReader(socket) {
  let buffered = Buffer.alloc(0);
  let waiting = null;
  let closed = false;
  const onData = (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    waiting?.check();
  };
  socket.on('data', onData);
  socket.once('close', () => {
    closed = true;
    waiting?.reject(new Error('closed'));
  });
  const read = (n) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (buffered.length < n) return;
        waiting = null;
        const out = buffered.subarray(0, n);
        buffered = buffered.subarray(n);
        resolve(out);
      };
      if (closed) return reject(new Error('closed'));
      waiting = { check, reject };
      check();
    });
  read.rest = () => {
    socket.off('data', onData);
    return buffered;
  };
  return read;
}
