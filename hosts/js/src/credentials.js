// An access-token provider for the official TypeScript SDK:
//   new Anthropic({ credentials: wifCredentials(authConfig, { policy: 'policy.toml' }) })

import { createProvider } from './provider.js';

/**
 * A `credentials` provider for `@anthropic-ai/sdk`'s `Anthropic` client.
 *
 * The SDK calls it before requests and, after an API 401, with
 * `{forceRefresh: true}`, which invalidates the component's cached token so
 * the next token comes from a fresh exchange. It answers `expiresAt: 0`, so
 * the SDK asks again before each request and the component's refresh windows
 * (scaled for short-lived tokens, with the backoff after a failed advisory
 * refresh) decide when to exchange; the provider's own cache makes those
 * calls cheap. Pass `provider` to share one provider between clients.
 */
export function wifCredentials(config, { policy, provider = createProvider({ policy }) } = {}) {
  return async ({ forceRefresh = false } = {}) => {
    if (forceRefresh) await provider.invalidate(config);
    const token = await provider.getToken(config);
    return { token: token.token, expiresAt: 0 };
  };
}
