// The shared scenario table (tests/scenarios.json at the repository root),
// run through this host.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { Policy, WifError, createProvider } from '../src/index.js';
import { ConnectProxy, DripServer, IdentityServer, ManualClock, TokenEndpoint, downAddress } from './loopback.js';
import { TestCa } from './pki.js';

const table = JSON.parse(fs.readFileSync(new URL('../../../tests/scenarios.json', import.meta.url), 'utf8'));

/** The variables the host process itself reads; no scenario sees the machine's own. */
const PROCESS_VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY', 'SSL_CERT_FILE', 'SSL_CERT_DIR'];
/** The name only the CONNECT proxy resolves (to 127.0.0.1). */
const PROXIED_HOST = 'token.scenario.test';
const PROXY_USER = 'scenario';
const PROXY_PASSWORD = 'proxy-s3cret';

const ca = new TestCa();
const identity = ca.issue([PROXIED_HOST, '127.0.0.1']);

function fill(value, places) {
  if (typeof value === 'string') {
    return Object.entries(places).reduce((text, [name, with_]) => text.replaceAll(`{{${name}}}`, with_), value);
  }
  if (Array.isArray(value)) return value.map((v) => fill(v, places));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, places)]));
  return value;
}

function checkError(error, expect, where) {
  assert.ok(error instanceof WifError, `${where}: ${error?.stack ?? error}`);
  assert.ok('error' in expect, `${where}: expected a token, got ${error.message}`);
  assert.equal(error.code, expect.error, `${where}: ${error.message}`);
  if ('capability' in expect) assert.equal(error.capability, expect.capability, where);
  if ('kind' in expect) assert.equal(error.kind, expect.kind, where);
  if ('status' in expect) assert.equal(error.status, expect.status, where);
  if ('contains' in expect) assert.ok(error.message.includes(expect.contains), `${where}: ${error.message}`);
  for (const text of expect.not_contains ?? []) assert.ok(!error.message.includes(text), `${where}: ${error.message}`);
}

/** Sets `values` in this process's environment after removing PROCESS_VARIABLES; returns the function that restores them all. */
function setProcessEnv(values) {
  const names = [...new Set([...PROCESS_VARIABLES, ...Object.keys(values)])];
  const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
  for (const name of PROCESS_VARIABLES) delete process.env[name];
  Object.assign(process.env, values);
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

for (const original of table.scenarios) {
  test(original.name, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wif-scenario-'));
    const tokens = await new TokenEndpoint().start();
    await tokens.startTls(identity);
    const identityServer = await new IdentityServer().start();
    const proxy = await new ConnectProxy({ user: PROXY_USER, password: PROXY_PASSWORD, hosts: [PROXIED_HOST] }).start();
    const drip = await new DripServer().start();
    const places = {
      DIR: dir,
      TOKEN_ORIGIN: tokens.origin,
      ID_ORIGIN: identityServer.origin,
      CA_FILE: path.join(dir, 'test-ca.pem'),
      TLS_TOKEN_ORIGIN: tokens.tlsOrigin,
      PROXIED_TOKEN_ORIGIN: `https://${PROXIED_HOST}:${tokens.tlsPort}`,
      PROXY: proxy.address,
      DOWN_PROXY: await downAddress(),
      DRIP_ORIGIN: drip.origin,
    };
    fs.writeFileSync(places.CA_FILE, ca.cert);
    const scenario = fill(original, places);
    const env = Object.keys(scenario.env ?? {});
    const clock = new ManualClock();
    const restore = setProcessEnv(scenario.process_env ?? {});
    let provider;
    try {
      for (const [name, text] of Object.entries(scenario.files ?? {})) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), text);
      }
      for (const [name, target] of Object.entries(scenario.symlinks ?? {})) fs.symlinkSync(target, path.join(dir, name));
      for (const [name, value] of Object.entries(scenario.env ?? {})) process.env[name] = value;
      provider = createProvider({ policy: Policy.fromToml(scenario.policy), clock: clock.read });
      const config = fill(table.config, places);
      config.workload_identity_federation.identity_token = scenario.source;
      if ('base_url' in scenario) config.workload_identity_federation.base_url = scenario.base_url;
      for (const [i, step] of scenario.steps.entries()) {
        const where = `step ${i + 1}`;
        clock.advance(step.advance ?? 0);
        for (const [name, text] of Object.entries(step.files ?? {})) fs.writeFileSync(path.join(dir, name), text);
        if (step.token_endpoint) tokens.behaviour = step.token_endpoint;
        if (step.call === 'invalidate') {
          await provider.invalidate(config);
        } else {
          let token;
          try {
            token = await provider.getToken(config);
          } catch (error) {
            checkError(error, step.expect, where);
          }
          if (token) {
            assert.ok('token' in step.expect, `${where}: expected ${JSON.stringify(step.expect)}, got a token`);
            assert.equal(token.token, step.expect.token, where);
          }
        }
        assert.equal(tokens.exchanges, step.exchanges, `${where}: exchanges`);
        if ('assertion' in step) assert.equal(tokens.lastAssertion, step.assertion, where);
        if ('connects' in step) assert.equal(proxy.connects, step.connects, `${where}: connects`);
      }
    } finally {
      for (const name of env) delete process.env[name];
      restore();
      await provider?.close();
      await tokens.close();
      await identityServer.close();
      await proxy.close();
      await drip.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
