// Anthropic Workload Identity Federation for Node.js, through the
// anthropic-wif WebAssembly component (transpiled by jco). The component owns
// the logic; this package hosts it and grants it files, variables, origins
// and commands under a deny-by-default policy (the same TOML file as the Rust
// host's `wif-host`).
//
//   const provider = createProvider({ policy: 'policy.toml' });
//   const client = await provider.client(authConfig);   // validated once; hold it
//   const token = await client.token();

export { AccessToken, Client, DEFAULT_CALL_BUDGET_MS, createProvider, systemClock } from './provider.js';
export { wifCredentials } from './credentials.js';
export { WifError } from './errors.js';
export { Policy, PolicyError, originOf } from './policy.js';
export { DEFAULT_MAX_MEMORY_BYTES } from './memory.js';
