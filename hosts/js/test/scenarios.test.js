// The shared scenario table (tests/scenarios.json at the repository root),
// run through this host.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { Policy, WifError, createProvider } from '../src/index.js';
import { IdentityServer, ManualClock, TokenEndpoint } from './loopback.js';

const table = JSON.parse(fs.readFileSync(new URL('../../../tests/scenarios.json', import.meta.url), 'utf8'));

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
}

for (const original of table.scenarios) {
  test(original.name, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wif-scenario-'));
    const tokens = await new TokenEndpoint().start();
    const identity = await new IdentityServer().start();
    const places = { DIR: dir, TOKEN_ORIGIN: tokens.origin, ID_ORIGIN: identity.origin };
    const scenario = fill(original, places);
    const env = Object.keys(scenario.env ?? {});
    const clock = new ManualClock();
    const provider = createProvider({ policy: Policy.fromToml(scenario.policy), clock: clock.read });
    try {
      for (const [name, text] of Object.entries(scenario.files ?? {})) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), text);
      }
      for (const [name, target] of Object.entries(scenario.symlinks ?? {})) fs.symlinkSync(target, path.join(dir, name));
      for (const [name, value] of Object.entries(scenario.env ?? {})) process.env[name] = value;
      const config = fill(table.config, places);
      config.workload_identity_federation.identity_token = scenario.source;
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
      }
    } finally {
      for (const name of env) delete process.env[name];
      await provider.close();
      await tokens.close();
      await identity.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
