// The network and hardening of the host beyond the shared scenario table:
// policy keys, https:// and SOCKS5 proxies, the headers a component may not
// give, stderr redaction, the memory cap on the component.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { httpFetch, redactValues, runCommand } from '../src/capabilities.js';
import { Policy, PolicyError, WifError, createProvider } from '../src/index.js';
import { HttpClient } from '../src/net.js';
import { ConnectProxy, Socks5Proxy, TokenEndpoint } from './loopback.js';
import { TestCa } from './pki.js';

const HOST = 'token.scenario.test';
const ca = new TestCa();
const identity = ca.issue([HOST, '127.0.0.1']);

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'wif-network-'));
}

const exchange = (url) => ({
  url,
  method: 'POST',
  headers: [{ name: 'content-type', value: 'application/json' }, { name: 'anthropic-beta', value: 'oauth-2025-04-20,oidc-federation-2026-04-01' }],
  body: new TextEncoder().encode(JSON.stringify({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: 'a', federation_rule_id: 'f', organization_id: 'o' })),
});

test('every key of the Rust policy is accepted; bad values name the key', () => {
  const dir = tempDir();
  try {
    fs.writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
    fs.writeFileSync(path.join(dir, 'empty.pem'), 'no certificate here');
    const policy = Policy.fromToml(`[http]\nallow_origins = []\nca_files = ["${dir}/ca.pem"]\nproxy = "http://user:pw@proxy.corp:3128"\n`);
    assert.deepEqual(policy.caFiles, [`${dir}/ca.pem`]);
    assert.equal(String(policy.proxy.proxy), 'http://proxy.corp:3128');
    assert.equal(Policy.fromToml('[http]\nproxy = "none"\n').proxy.kind, 'none');
    assert.equal(Policy.fromToml('[http]\nproxy = "env"\n').proxy.kind, 'env');
    assert.equal(new Policy().proxy.kind, 'env');
    const refused = [
      [`[http]\nca_files = ["${dir}/empty.pem"]\n`, /http\.ca_files\[0\]: .*holds no PEM certificate/],
      [`[http]\nca_files = ["${dir}/missing.pem"]\n`, /http\.ca_files\[0\]: cannot read .*ENOENT/],
      ['[http]\nca_files = ["relative.pem"]\n', /http\.ca_files\[0\]: `relative.pem` is relative/],
      ['[http]\nproxy = "direct"\n', /http\.proxy: unknown value/],
      ['[http]\nproxy = "ftp://user:s3cret@p:1"\n', /http\.proxy: the value has scheme `ftp`/],
      ['[http]\nproxy = "http://p:1/path"\n', /http\.proxy: the value has a path or query/],
    ];
    for (const [text, message] of refused) {
      assert.throws(() => Policy.fromToml(text), (e) => e instanceof PolicyError && message.test(e.message) && !e.message.includes('s3cret'), text);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an https:// proxy: TLS to the proxy, CONNECT with credentials, TLS to the destination', async () => {
  const dir = tempDir();
  const tokens = await new TokenEndpoint().startTls(identity);
  const proxy = await new ConnectProxy({ user: 'u', password: 'p@ss', hosts: [HOST], tls: identity }).start();
  try {
    fs.writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
    const url = `https://${HOST}:${tokens.tlsPort}/v1/oauth/token`;
    const policy = Policy.fromToml(`[http]\nallow_origins = ["https://${HOST}:${tokens.tlsPort}"]\nca_files = ["${dir}/ca.pem"]\nproxy = "https://u:p%40ss@${proxy.address}"\n`);
    const client = new HttpClient(policy);
    const answer = await httpFetch(policy, client, exchange(url));
    await client.close();
    assert.equal(answer.tag, 'ok', JSON.stringify(answer.val));
    assert.equal(answer.val.status, 200);
    assert.equal(proxy.connects, 1);
    assert.equal(tokens.exchanges, 1);
    // The proxy's certificate from a CA this client does not trust: the error names the proxy and the CA problem.
    const untrusting = Policy.fromToml(`[http]\nallow_origins = ["https://${HOST}:${tokens.tlsPort}"]\nproxy = "https://u:p%40ss@${proxy.address}"\n`);
    const other = new HttpClient(untrusting);
    const refused = await httpFetch(untrusting, other, exchange(url));
    await other.close();
    assert.equal(refused.tag, 'err');
    assert.equal(refused.val.tag, 'failed');
    assert.match(refused.val.val, new RegExp(`^proxy https://${proxy.address}: TLS: the certificate of 127\\.0\\.0\\.1 is signed by an unknown certificate authority`));
    assert.ok(!refused.val.val.includes('p%40ss') && !refused.val.val.includes('p@ss'));
  } finally {
    await proxy.close();
    await tokens.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SOCKS5 proxies: socks5h lets the proxy resolve the name, socks5 resolves it here; refusals name the proxy', async () => {
  const dir = tempDir();
  const tokens = await new TokenEndpoint().startTls(identity);
  const socks = await new Socks5Proxy({ user: 'u', password: 's3cret', hosts: [HOST] }).start();
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
  const origin = `https://${HOST}:${tokens.tlsPort}`;
  const through = async (proxy) => {
    const policy = Policy.fromToml(`[http]\nallow_origins = ["${origin}"]\nca_files = ["${dir}/ca.pem"]\nproxy = "${proxy}"\n`);
    const client = new HttpClient(policy);
    try {
      return await httpFetch(policy, client, exchange(`${origin}/v1/oauth/token`));
    } finally {
      await client.close();
    }
  };
  try {
    const answer = await through(`socks5h://u:s3cret@${socks.address}`);
    assert.equal(answer.tag, 'ok', JSON.stringify(answer.val));
    assert.equal(answer.val.status, 200);
    assert.deepEqual(socks.targets, [`${HOST}:${tokens.tlsPort}`]);
    const local = await through(`socks5://u:s3cret@${socks.address}`);
    assert.deepEqual(local.val, { tag: 'failed', val: `DNS: the host ${HOST} was not found` });
    assert.equal(socks.targets.length, 1, 'socks5:// resolves the name before asking the proxy');
    const wrong = await through(`socks5h://u:wrong@${socks.address}`);
    assert.deepEqual(wrong.val, { tag: 'failed', val: `proxy socks5h://${socks.address} refused its credentials (SOCKS5 authentication failed)` });
    const none = await through(`socks5h://${socks.address}`);
    assert.equal(none.val.tag, 'failed');
    assert.match(none.val.val, /^proxy socks5h:\/\/127\.0\.0\.1:\d+ (accepts none of the offered SOCKS5 authentication methods|requires SOCKS5 credentials)/);
    assert.equal(tokens.exchanges, 1);
  } finally {
    await socks.close();
    await tokens.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad proxy variable is named, never quoted', async () => {
  const fromEnv = Policy.fromToml(`[http]\nallow_origins = ["https://${HOST}"]\n`);
  const client = new HttpClient(fromEnv, new Map([['HTTPS_PROXY', 'ftp://user:s3cret@p:1']]));
  const bad = await httpFetch(fromEnv, client, exchange(`https://${HOST}/v1/oauth/token`));
  assert.equal(bad.val.tag, 'failed');
  assert.match(bad.val.val, /^proxy variable HTTPS_PROXY has scheme `ftp`/);
  assert.ok(!bad.val.val.includes('s3cret'));
});

test('headers the HTTP client sets itself are refused before any connection', async () => {
  const tokens = await new TokenEndpoint().start();
  try {
    const policy = Policy.fromToml(`[http]\nallow_origins = ["${tokens.origin}"]\n`);
    const client = new HttpClient(policy);
    const send = (name, value = 'x') => httpFetch(policy, client, { url: `${tokens.origin}/x`, method: 'GET', headers: [{ name, value }], body: new Uint8Array() });
    for (const name of ['Host', 'content-length', 'Expect', 'Connection', 'Transfer-Encoding', 'Proxy-Authorization', 'proxy-anything', 'TE', 'Upgrade', 'Keep-Alive']) {
      const answer = await send(name);
      assert.equal(answer.val.tag, 'denied', name);
      assert.match(answer.val.val, /is set by the HTTP client and cannot be given by a component/);
    }
    assert.equal((await send('bad name')).val.tag, 'failed');
    assert.equal((await send('x-ok', 'a\r\nHost: evil')).val.tag, 'failed');
    assert.equal(tokens.requests.length, 0);
    assert.equal((await send('x-ok')).tag, 'ok');
    await client.close();
  } finally {
    await tokens.close();
  }
});

test("granted values are hidden in a command's stderr, longest first; short values and stdout are left", async () => {
  const hidden = redactValues(Buffer.from('token=abcdef abcd 1 abcdefgh'), [Buffer.from('abcd'), Buffer.from('abcdefgh'), Buffer.from('1')]);
  assert.equal(Buffer.from(hidden).toString(), 'token=[redacted]ef [redacted] 1 [redacted]');
  process.env.WIF_NETWORK_SECRET = 'hvs.CAESIsecret';
  try {
    const policy = Policy.fromToml('[env]\nallow = ["WIF_NETWORK_SECRET"]\n[commands]\nallow = [["sh", "-c"]]\n');
    const answer = await runCommand(policy, ['sh', '-c', 'echo "$WIF_NETWORK_SECRET"; echo "X-Vault-Token: $WIF_NETWORK_SECRET" >&2'], 5000);
    assert.equal(Buffer.from(answer.val.stdout).toString(), 'hvs.CAESIsecret\n');
    assert.equal(Buffer.from(answer.val.stderr).toString(), 'X-Vault-Token: [redacted]\n');
  } finally {
    delete process.env.WIF_NETWORK_SECRET;
  }
});

test("the component's memory is capped: a call that needs more fails and the next instance works", async () => {
  const dir = tempDir();
  const tokens = await new TokenEndpoint().start();
  fs.writeFileSync(path.join(dir, 'token'), 'id-token');
  const policy = Policy.fromToml(`[files]\nallow = ["${dir}/token"]\n[http]\nallow_origins = ["${tokens.origin}"]\n`);
  const provider = createProvider({ policy, maxMemoryBytes: 4 * 1024 * 1024 });
  const config = (padding) => ({
    type: 'workload_identity_federation',
    workload_identity_federation: {
      federation_rule_id: 'fdrl_test',
      organization_id: '00000000-0000-4000-8000-000000000000',
      base_url: tokens.origin,
      identity_token: { file: `${dir}/token` },
      ...(padding ? { padding } : {}),
    },
  });
  try {
    await assert.rejects(provider.getToken(config('x'.repeat(8 * 1024 * 1024))), (e) => e instanceof WifError && e.code === 'component' && /trapped/.test(e.message));
    assert.equal(tokens.exchanges, 0);
    assert.equal((await provider.getToken(config())).token, 'sk-ant-oat01-scenario-1');
    const tooSmall = createProvider({ policy, maxMemoryBytes: 64 * 1024 });
    await assert.rejects(tooSmall.getToken(config()), (e) => e instanceof WifError && e.code === 'load' && /bytes of memory to start, above the cap of 65536 bytes/.test(e.message));
    await tooSmall.close();
  } finally {
    await provider.close();
    await tokens.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SSL_CERT_DIR and SSL_CERT_FILE replace the system roots; ca_files add to them', async () => {
  const dir = tempDir();
  const tokens = await new TokenEndpoint().startTls(identity);
  const saved = { file: process.env.SSL_CERT_FILE, dir: process.env.SSL_CERT_DIR };
  fs.mkdirSync(path.join(dir, 'certs'));
  fs.writeFileSync(path.join(dir, 'certs', 'test-ca.pem'), ca.cert);
  fs.writeFileSync(path.join(dir, 'other-ca.pem'), new TestCa('another test CA').cert);
  const fetchWith = async (variables) => {
    delete process.env.SSL_CERT_FILE;
    delete process.env.SSL_CERT_DIR;
    Object.assign(process.env, variables);
    const policy = Policy.fromToml(`[http]\nallow_origins = ["${tokens.tlsOrigin}"]\n`);
    const client = new HttpClient(policy);
    try {
      return await httpFetch(policy, client, exchange(`${tokens.tlsOrigin}/v1/oauth/token`));
    } finally {
      await client.close();
    }
  };
  try {
    assert.equal((await fetchWith({ SSL_CERT_DIR: `${dir}/missing:${dir}/certs` })).tag, 'ok');
    const other = await fetchWith({ SSL_CERT_FILE: `${dir}/other-ca.pem` });
    assert.equal(other.val.tag, 'failed');
    assert.match(other.val.val, /unknown issuer.*trusted now: SSL_CERT_FILE=.*other-ca\.pem \(instead of the system CA bundle\)/);
  } finally {
    for (const [name, value] of [['SSL_CERT_FILE', saved.file], ['SSL_CERT_DIR', saved.dir]]) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await tokens.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
