// wifCredentials in the official TypeScript SDK: a real messages.create
// against a loopback Messages API stand-in.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import { Policy, createProvider, wifCredentials } from '../src/index.js';
import { Loopback, TokenEndpoint, jsonReply } from './loopback.js';

const MESSAGE = {
  id: 'msg_wif',
  type: 'message',
  role: 'assistant',
  model: 'claude-test',
  content: [{ type: 'text', text: 'hello from the stand-in' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 3, output_tokens: 5 },
};

/** `POST /v1/messages` accepting only the bearer tokens in `accepted`, with the OAuth beta and no API key. */
class MessagesApi extends Loopback {
  constructor() {
    super((request) => {
      if (request.method !== 'POST' || request.path !== '/v1/messages') return jsonReply(404, { type: 'error' });
      const bearer = (request.headers.authorization ?? '').replace(/^Bearer /, '');
      const betas = (request.headers['anthropic-beta'] ?? '').split(',').map((b) => b.trim());
      if (!this.accepted.has(bearer) || !betas.includes('oauth-2025-04-20') || 'x-api-key' in request.headers) {
        return jsonReply(401, { type: 'error', error: { type: 'authentication_error', message: 'invalid' } });
      }
      return jsonReply(200, MESSAGE);
    });
    this.accepted = new Set();
  }
}

let dir, tokens, messages, provider, config;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wif-sdk-'));
  fs.writeFileSync(path.join(dir, 'token'), 'id-token-for-the-sdk');
  tokens = await new TokenEndpoint().start();
  messages = await new MessagesApi().start();
  provider = createProvider({
    policy: Policy.fromToml(`[files]\nallow = ["${dir}/token"]\n[http]\nallow_origins = ["${tokens.origin}"]\n`),
  });
  config = {
    type: 'workload_identity_federation',
    workload_identity_federation: {
      federation_rule_id: 'fdrl_test',
      organization_id: '00000000-0000-4000-8000-000000000000',
      base_url: tokens.origin,
      identity_token: { file: `${dir}/token` },
    },
  };
});

afterEach(async () => {
  await provider.close();
  await tokens.close();
  await messages.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const ask = (client) => client.messages.create({ model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });

test('messages.create through the official SDK', async () => {
  messages.accepted = new Set(['sk-ant-oat01-scenario-1']);
  const client = new Anthropic({ credentials: wifCredentials(config, { provider }), baseURL: messages.origin });
  for (let i = 0; i < 2; i++) assert.equal((await ask(client)).content[0].text, 'hello from the stand-in');
  assert.equal(tokens.exchanges, 1);
  assert.equal(tokens.lastAssertion, 'id-token-for-the-sdk');
  assert.deepEqual(
    messages.requests.map((r) => r.headers.authorization),
    ['Bearer sk-ant-oat01-scenario-1', 'Bearer sk-ant-oat01-scenario-1'],
  );
});

test('an API 401 forces a fresh exchange', async () => {
  messages.accepted = new Set(['sk-ant-oat01-scenario-2']);
  const client = new Anthropic({ credentials: wifCredentials(config, { provider }), baseURL: messages.origin, maxRetries: 1 });
  assert.equal((await ask(client)).id, 'msg_wif');
  assert.equal(tokens.exchanges, 2);
  assert.deepEqual(
    messages.requests.map((r) => r.headers.authorization),
    ['Bearer sk-ant-oat01-scenario-1', 'Bearer sk-ant-oat01-scenario-2'],
  );
});

test('forceRefresh invalidates; plain calls are served from the cache', async () => {
  const credentials = wifCredentials(config, { provider });
  const first = await credentials();
  assert.equal((await credentials()).token, first.token);
  assert.equal(tokens.exchanges, 1);
  assert.equal((await credentials({ forceRefresh: true })).token, 'sk-ant-oat01-scenario-2');
  assert.equal(tokens.exchanges, 2);
  assert.equal(first.expiresAt, 0, 'the component caches: the SDK must ask it before each request');
});

test('a 401 that persists after the fresh exchange reaches the caller, after one refresh only', async () => {
  messages.accepted = new Set();
  const client = new Anthropic({ credentials: wifCredentials(config, { provider }), baseURL: messages.origin, maxRetries: 2 });
  await assert.rejects(ask(client), (e) => e instanceof Anthropic.AuthenticationError && e.status === 401);
  assert.equal(tokens.exchanges, 2);
  assert.deepEqual(
    messages.requests.map((r) => r.headers.authorization),
    ['Bearer sk-ant-oat01-scenario-1', 'Bearer sk-ant-oat01-scenario-2'],
  );
});
