// Proxy selection, the Rust host's cases (host-example/src/net/proxy/tests.rs) ported.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import util from 'node:util';

import { originOf } from '../src/policy.js';
import { ENV, ProxyUrl, RouteError, isLocal, proxyEnv, select } from '../src/proxy.js';

const env = (pairs) => proxyEnv((name) => pairs[name]);
const pinned = (url) => ({ kind: 'pinned', proxy: ProxyUrl.parse(url) });
const NONE = { kind: 'none' };

function proxiedBy(setting, vars, url) {
  const route = select(setting, vars, originOf(url));
  return route.proxy ? [String(route.proxy), route.source] : null;
}

test('https URLs read https_proxy (lower case first), then all_proxy', () => {
  const both = env({ https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2', ALL_PROXY: 'http://all:3' });
  assert.deepEqual(proxiedBy(ENV, both, 'https://api.example.com'), ['http://lower:1', 'https_proxy']);
  const upper = env({ HTTPS_PROXY: 'http://upper:2', ALL_PROXY: 'http://all:3' });
  assert.deepEqual(proxiedBy(ENV, upper, 'https://api.example.com'), ['http://upper:2', 'HTTPS_PROXY']);
  const all = env({ all_proxy: 'socks5h://all:3', ALL_PROXY: 'http://other:4' });
  assert.deepEqual(proxiedBy(ENV, all, 'https://api.example.com'), ['socks5h://all:3', 'all_proxy']);
});

test('http URLs read lower-case http_proxy only', () => {
  assert.equal(proxiedBy(ENV, env({ HTTP_PROXY: 'http://cgi:1' }), 'http://10.1.2.3'), null);
  const lower = env({ http_proxy: 'http://p:1', https_proxy: 'http://s:2' });
  assert.deepEqual(proxiedBy(ENV, lower, 'http://10.1.2.3'), ['http://p:1', 'http_proxy']);
});

test('loopback and link-local are never proxied', () => {
  const all = env({ https_proxy: 'http://p:1', http_proxy: 'http://p:1' });
  for (const url of [
    'https://localhost:8443',
    'https://127.0.0.1',
    'https://127.9.9.9:1',
    'http://[::1]:80',
    'http://169.254.169.254',
    'http://[fe80::1]',
    'https://app.localhost',
    'http://[::ffff:127.0.0.1]:8080',
    'http://[::ffff:169.254.169.254]',
  ]) {
    assert.equal(proxiedBy(ENV, all, url), null, url);
    assert.equal(proxiedBy(pinned('http://pinned:1'), all, url), null, url);
  }
});

test('local hosts: loopback, link-local and localhost names only', () => {
  for (const host of ['localhost', 'LOCALHOST', 'localhost.', 'app.localhost', 'a.b.Localhost.', '127.0.0.1', '127.1.2.3', '169.254.169.254', '[::1]', '::1', '[fe80::1]', '[febf::1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[::ffff:169.254.169.254]']) {
    assert.ok(isLocal(host), host);
  }
  for (const host of ['', 'api.anthropic.com', 'localhost.example.com', 'notlocalhost', 'localhost.evil', 'xlocalhost', '10.0.0.1', '192.168.1.1', '128.0.0.1', '0.0.0.0', '[::]', '[::2]', '[fec0::1]', '[::ffff:10.0.0.1]', '[::127.0.0.1]', '[2001:db8::1]', '[::1', '::1]', 'localhost..']) {
    assert.ok(!isLocal(host), host);
  }
});

test('the policy can pin or refuse a proxy', () => {
  assert.deepEqual(proxiedBy(pinned('https://pinned:8443'), env({}), 'https://api.example.com'), ['https://pinned:8443', 'http.proxy (policy)']);
  assert.equal(proxiedBy(NONE, env({ https_proxy: 'http://env:1' }), 'https://api.example.com'), null);
});

test('no_proxy forms', () => {
  const cases = [
    ['*', 'https://api.example.com', true],
    ['example.com', 'https://api.example.com', true],
    ['.example.com', 'https://api.example.com', true],
    ['example.com', 'https://example.com', true],
    ['.example.com', 'https://example.com', true],
    ['example.com', 'https://notexample.com', false],
    ['EXAMPLE.com', 'https://Api.Example.COM', true],
    ['  other.org ,  example.com  ', 'https://api.example.com', true],
    ['other.org,,', 'https://api.example.com', false],
    ['10.1.2.3', 'https://10.1.2.3', true],
    ['10.1.2.3', 'https://10.1.2.4', false],
    ['10.0.0.0/8', 'https://10.200.3.4', true],
    ['10.0.0.0/8', 'https://11.0.0.1', false],
    ['192.168.1.0/24', 'https://192.168.1.77:8443', true],
    ['0.0.0.0/0', 'https://8.8.8.8', true],
    ['2001:db8::/32', 'https://[2001:db8::5]', true],
    ['2001:db8::/32', 'https://[2001:db9::5]', false],
    ['2001:db8::5', 'https://[2001:db8::5]', true],
    ['[2001:db8::5]:8443', 'https://[2001:db8::5]:8443', true],
    ['[2001:db8::5]:8443', 'https://[2001:db8::5]', false],
    ['example.com:8443', 'https://api.example.com:8443', true],
    ['example.com:8443', 'https://api.example.com', false],
    ['example.com:443', 'https://api.example.com', true],
    ['10.0.0.0/8', 'https://ten.example.com', false],
  ];
  for (const [list, url, bypassed] of cases) {
    const vars = env({ https_proxy: 'http://p:1', no_proxy: list });
    assert.equal(proxiedBy(ENV, vars, url) === null, bypassed, `no_proxy=${JSON.stringify(list)} url=${url}`);
  }
});

test('no_proxy is read lower case first and the route says which entry matched', () => {
  const vars = env({ https_proxy: 'http://p:1', no_proxy: 'a.org, example.com', NO_PROXY: 'other.net' });
  assert.deepEqual(select(ENV, vars, originOf('https://api.example.com')), { direct: 'no_proxy entry `example.com` matches' });
  assert.equal(proxiedBy(ENV, env({ https_proxy: 'http://p:1', NO_PROXY: 'example.com' }), 'https://api.example.com'), null);
});

test('proxy URLs parse as curl reads them', () => {
  assert.equal(String(ProxyUrl.parse('proxy.corp:3128')), 'http://proxy.corp:3128');
  assert.equal(ProxyUrl.parse('http://proxy.corp').port, 80);
  assert.equal(ProxyUrl.parse('https://proxy.corp').port, 443);
  assert.equal(ProxyUrl.parse('socks5://proxy.corp').port, 1080);
  assert.equal(ProxyUrl.parse('socks5h://proxy.corp:9').scheme, 'socks5h');
  assert.throws(() => ProxyUrl.parse('socks4://proxy.corp'), /socks5h/);
  assert.throws(() => ProxyUrl.parse('http://proxy.corp/path'), /path or query/);
  assert.throws(() => ProxyUrl.parse('http://'));
});

test('proxy credentials never show', () => {
  const proxy = ProxyUrl.parse('http://us%40er:p%3Ass-w0rd@proxy.corp:3128');
  assert.ok(proxy.hasCredentials);
  const shown = `${proxy} ${util.inspect(proxy)} ${JSON.stringify({ proxy })} ${util.inspect(pinned('http://us%40er:p%3Ass-w0rd@proxy.corp:3128'))}`;
  assert.ok(!shown.includes('w0rd') && !shown.includes('us%40er'), shown);
  assert.ok(shown.includes('proxy.corp:3128'));
  assert.ok(proxy.expose().includes('p%3Ass-w0rd'));
  const bad = env({ https_proxy: 'ftp://user:s3cret@p:1' });
  assert.throws(
    () => select(ENV, bad, originOf('https://api.example.com')),
    (e) => e instanceof RouteError && e.message.startsWith('proxy variable https_proxy') && !e.message.includes('s3cret'),
  );
});
