// The provider and its capabilities: policy parsing, requirements, the call
// deadline, single flight, the exchange's shape and the hardening of each
// capability.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { test } from 'node:test';

import { getEnv, readFile, runCommand } from '../src/capabilities.js';
import { Policy, PolicyError, WifError, createProvider, originOf } from '../src/index.js';
import { ManualClock, TokenEndpoint } from './loopback.js';

const auth = (baseUrl, source) => ({
  type: 'workload_identity_federation',
  workload_identity_federation: {
    federation_rule_id: 'fdrl_test',
    organization_id: '00000000-0000-4000-8000-000000000000',
    base_url: baseUrl,
    identity_token: source,
  },
});

async function withFileSource(work, options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wif-provider-'));
  fs.writeFileSync(path.join(dir, 'token'), 'id-token');
  const tokens = await new TokenEndpoint().start();
  const policy = Policy.fromToml(`[files]\nallow = ["${dir}/token"]\n[http]\nallow_origins = ["${tokens.origin}"]\n`);
  const provider = createProvider({ policy, ...options });
  try {
    await work(provider, auth(tokens.origin, { file: `${dir}/token` }), tokens);
  } finally {
    await provider.close();
    await tokens.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const caseOf = (result) => (result.tag === 'err' ? result.val.tag : 'ok');

test('the documented policy parses and grants exactly what it says', () => {
  const policy = Policy.fromToml(`
[env]
allow = ["ACTIONS_ID_TOKEN_REQUEST_URL"]
[files]
allow_prefixes = ["/var/run/secrets/"]
max_bytes = 65536
[http]
allow_origins = ["https://api.anthropic.com", "http://127.0.0.1:8080", "http://169.254.169.254"]
timeout_secs = 10
[commands]
allow = [["gcloud", "auth", "print-identity-token"]]
timeout_secs = 2.5
`);
  assert.ok(policy.allowsEnv('ACTIONS_ID_TOKEN_REQUEST_URL') && !policy.allowsEnv('HOME'));
  assert.ok(policy.allowsOrigin(originOf('https://API.anthropic.com:443/v1/oauth/token')));
  assert.ok(!policy.allowsOrigin(originOf('https://api.anthropic.com:8443')));
  assert.ok(policy.allowsCommand(['gcloud', 'auth', 'print-identity-token', '--audiences=x']));
  assert.ok(!policy.allowsCommand(['gcloud', 'auth']));
  assert.equal(policy.commandTimeoutSecs, 2.5);
  assert.equal(policy.maxBodyBytes, 1024 * 1024);
});

for (const [text, names] of [
  ['[envs]\nallow = []', 'envs'],
  ['[env]\nallowed = []', 'env.allowed'],
  ['[files]\nallow = ["token"]', 'files.allow[0]'],
  ['[files]\nallow_prefixes = ["/var/../etc"]', 'files.allow_prefixes[0]'],
  ['[http]\nallow_origins = ["api.anthropic.com"]', 'https://api.anthropic.com'],
  ['[http]\nallow_origins = ["https://api.anthropic.com/v1"]', 'path'],
  ['[http]\nallow_origins = ["https://user@api.anthropic.com"]', 'user information'],
  ['[http]\nallow_origins = ["http://api.anthropic.com"]', 'plain http'],
  ['[http]\ntimeout_secs = 0', 'http.timeout_secs'],
  ['[http]\ntimeout_secs = 1e-300', 'http.timeout_secs'],
  ['[commands]\nallow = [[]]', 'commands.allow[0]'],
  ['[env\n', 'policy'],
]) {
  test(`an invalid policy names ${names}`, () => {
    assert.throws(() => Policy.fromToml(text), (e) => e instanceof PolicyError && e.message.includes(names));
  });
}

test('requirements list what a config needs without any grant', async () => {
  const provider = createProvider();
  try {
    const needs = await provider.requirements(auth('https://api.anthropic.com', { url: '${ACTIONS_ID_TOKEN_REQUEST_URL}&audience=x' }));
    assert.deepEqual(needs.env, ['ACTIONS_ID_TOKEN_REQUEST_URL']);
    assert.deepEqual(needs.origins, ['https://api.anthropic.com']);
    assert.equal(needs.urls[0].origin, undefined);
    await assert.rejects(provider.getToken({ type: 'workload_identity_federation' }), (e) => e.code === 'invalid-config');
  } finally {
    await provider.close();
  }
});

test('a call past its deadline ends the instance and the next call works', async () => {
  // Parsing 128 MiB of config takes the component far more than the budget
  // (16 MiB took 1.6 s on a loaded machine and under 250 ms on an idle one,
  // so 16 MiB was not enough); a small call takes about a millisecond.
  await withFileSource(async (provider, config) => {
    const huge = JSON.stringify(config) + ' '.repeat(128 * 1024 * 1024);
    await assert.rejects(provider.getToken(huge), (e) => e instanceof WifError && e.code === 'component' && /time budget/.test(e.message));
    assert.equal((await provider.getToken(config)).token, 'sk-ant-oat01-scenario-1');
  }, { callBudgetMs: 250 });
});

test('concurrent callers share one exchange', async () => {
  await withFileSource(async (provider, config, tokens) => {
    const all = await Promise.all(Array.from({ length: 8 }, () => provider.getToken(config)));
    assert.deepEqual(all.map((t) => t.token), Array(8).fill('sk-ant-oat01-scenario-1'));
    assert.equal(tokens.exchanges, 1);
  });
});

test('a client is validated once, shared per config text, and drops only the token a 401 refused', async () => {
  await withFileSource(async (provider, config, tokens) => {
    const client = await provider.client(config);
    assert.equal(await provider.client(config), client, 'the same client for the same config');
    const first = await client.token();
    assert.equal((await provider.getToken(config)).token, first.token, 'getToken goes through the same client');
    await client.invalidateRejected('sk-ant-oat01-some-other-token');
    assert.equal((await client.token()).token, first.token, 'another token refused: kept');
    await client.invalidateRejected(first.token);
    const second = await client.token();
    assert.notEqual(second.token, first.token);
    await client.invalidateRejected(first.token);
    assert.equal((await client.token()).token, second.token, 'already replaced: kept');
    assert.equal(tokens.exchanges, 2);
    assert.deepEqual(Object.keys(await client.requirements()).sort(), ['commands', 'env', 'files', 'optionalEnv', 'origins', 'urls', 'whenSetUrls']);
    await assert.rejects(provider.client({ type: 'nope' }), (e) => e instanceof WifError && e.code === 'invalid-config');
  });
});

test('the exchange is what the official SDKs send, and the token never shows', async () => {
  const clock = new ManualClock();
  await withFileSource(async (provider, config, tokens) => {
    const token = await provider.getToken(config);
    assert.equal(token.expiresAt, 1_900_000_000 + 600);
    assert.ok(token.refreshAfter <= token.expiresAt - 120);
    const request = tokens.requests.at(-1);
    assert.equal(request.headers['anthropic-beta'], 'oauth-2025-04-20,oidc-federation-2026-04-01');
    assert.equal(JSON.parse(request.body).assertion, 'id-token');
    assert.ok(!inspect(token).includes('sk-ant') && !JSON.stringify(token).includes('sk-ant'));
  }, { clock: clock.read });
});

test('read-file: kinds of failure, size cap, symlinks resolved before the check', () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'wif-files-')));
  try {
    fs.writeFileSync(path.join(dir, 'token'), 'id-token');
    fs.writeFileSync(path.join(dir, 'big'), 'x'.repeat(11));
    fs.mkdirSync(path.join(dir, 'dir'));
    fs.symlinkSync('/etc/hostname', path.join(dir, 'link'));
    const policy = Policy.fromToml(`[files]\nallow_prefixes = ["${dir}"]\nmax_bytes = 10\n`);
    assert.equal(Buffer.from(readFile(policy, `${dir}/token`).val).toString(), 'id-token');
    assert.equal(caseOf(readFile(policy, `${dir}/big`)), 'too-large');
    assert.equal(caseOf(readFile(policy, `${dir}/dir`)), 'is-directory');
    assert.equal(caseOf(readFile(policy, `${dir}/absent`)), 'not-found');
    assert.equal(caseOf(readFile(policy, 'token')), 'denied');
    const linkDenial = readFile(policy, `${dir}/link`).val.val;
    assert.match(linkDenial, /is not granted$/);
    assert.doesNotMatch(linkDenial, /hostname/);
    assert.equal(caseOf(readFile(new Policy(), '/etc/hostname')), 'denied');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('get-env: granted names only, none when unset, no value in a denial', () => {
  process.env.WIF_TEST_GRANTED = 'the-value';
  try {
    const policy = Policy.fromToml('[env]\nallow = ["WIF_TEST_GRANTED", "WIF_TEST_UNSET"]');
    assert.deepEqual(getEnv(policy, 'WIF_TEST_GRANTED'), { tag: 'ok', val: 'the-value' });
    assert.deepEqual(getEnv(policy, 'WIF_TEST_UNSET'), { tag: 'ok', val: undefined });
    const denied = getEnv(new Policy(), 'WIF_TEST_GRANTED');
    assert.equal(caseOf(denied), 'denied');
    assert.ok(!denied.val.val.includes('the-value'));
  } finally {
    delete process.env.WIF_TEST_GRANTED;
  }
});

test('run-command: no shell, a minimal environment, capped output, a timeout that kills', async () => {
  process.env.WIF_TEST_SECRET = 'must-not-leak';
  process.env.WIF_TEST_GRANTED = 'granted-value';
  try {
    const policy = Policy.fromToml('[env]\nallow = ["WIF_TEST_GRANTED"]\n[commands]\nallow = [["env"], ["printf"], ["sleep"]]\ntimeout_secs = 0.3\n');
    const env = await runCommand(policy, ['env'], 10_000);
    const names = new Set(Buffer.from(env.val.stdout).toString().trim().split('\n').map((l) => l.split('=')[0]));
    assert.ok([...names].every((n) => ['PATH', 'HOME', 'WIF_TEST_GRANTED'].includes(n)) && names.has('WIF_TEST_GRANTED'));
    assert.equal(Buffer.from((await runCommand(policy, ['printf', '%s', '$HOME;id'], 10_000)).val.stdout).toString(), '$HOME;id');
    assert.equal(caseOf(await runCommand(policy, ['sh', '-c', 'env'], 10_000)), 'denied');
    assert.equal(caseOf(await runCommand(policy, ['sleep', '5'], 10_000)), 'timeout');
    const small = Policy.fromToml('[commands]\nallow = [["head"]]\nmax_output_bytes = 100\n');
    assert.equal(caseOf(await runCommand(small, ['head', '-c', '101', '/dev/zero'], 10_000)), 'too-large');
    assert.equal((await runCommand(small, ['head', '-c', '100', '/dev/zero'], 10_000)).val.stdout.length, 100);
    const missing = Policy.fromToml('[commands]\nallow = [["wif-no-such-program"]]\n');
    assert.equal(caseOf(await runCommand(missing, ['wif-no-such-program'], 10_000)), 'not-found');
  } finally {
    delete process.env.WIF_TEST_SECRET;
    delete process.env.WIF_TEST_GRANTED;
  }
});
