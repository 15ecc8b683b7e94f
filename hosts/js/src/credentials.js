// An access-token provider for the official TypeScript SDK:
//   new Anthropic({ credentials: wifCredentials(authConfig, { policy: 'policy.toml' }) })

import { createProvider } from './provider.js';

/**
 * A `credentials` provider for `@anthropic-ai/sdk`'s `Anthropic` client.
 *
 * It holds a client of the config (made on the first call). The SDK calls
 * it before requests and, after an API 401, with `{forceRefresh: true}`,
 * which drops the token it last returned (only that one: when another
 * request already replaced it, the new one stands) so the next token comes
 * from a fresh exchange. It answers `expiresAt: 0`, so
 * the SDK asks again before each request and the component's refresh windows
 * (scaled for short-lived tokens, with the backoff after a failed advisory
 * refresh) decide when to exchange; the provider's own cache makes those
 * calls cheap. Pass `provider` to share one provider between clients.
 */
export function wifCredentials(config, { policy, provider = createProvider({ policy }) } = {}) {
  let client = null;
  let last = null;
  return async ({ forceRefresh = false } = {}) => {
    client ??= await provider.client(config);
    if (forceRefresh) {
      if (last === null) await client.invalidate();
      else await client.invalidateRejected(last);
    }
    const token = await client.token();
    last = token.token;
    return { token: token.token, expiresAt: 0 };
  };
}
