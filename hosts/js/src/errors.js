// The errors of the provider: the component's failure classes plus the
// host's own. `code` is the case of the WIT `error` variant
// (`invalid-config`, `denied`, `source-failed`, `exchange-failed`,
// `exchange-rejected`, `malformed-response`) or `component` / `load`.
// None holds a token or an identity token.

/** Why no token (or no requirements) could be had. */
export class WifError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'WifError';
    this.code = code;
    Object.assign(this, details);
  }
}

function rejectionText(r) {
  let text = `token endpoint rejected the exchange with status ${r.status}`;
  for (const part of [r.error, r.errorDescription]) if (part != null) text += `: ${part}`;
  if (r.errorUri != null) text += ` (see ${r.errorUri})`;
  if (r.bodySnippet != null) text += `: body: ${r.bodySnippet}`;
  if (r.requestId != null) text += ` [request-id ${r.requestId}]`;
  if (r.hint != null) text += `. Hint: ${r.hint}`;
  return text;
}

/** The `error` variant the component returned (`{tag, val}`), as a `WifError`. */
export function fromComponent({ tag, val }) {
  switch (tag) {
    case 'invalid-config':
      return new WifError(tag, `invalid config: ${val.field ? `${val.field}: ` : ''}${val.message}`, { field: val.field });
    case 'denied':
      return new WifError(tag, `${val.capability} denied by the host's policy: ${val.detail}`, {
        capability: val.capability,
        detail: val.detail,
      });
    case 'source-failed':
      return new WifError(tag, `identity token from the ${val.kind} source (federation rule ${val.federationRuleId}): ${val.message}`, {
        kind: val.kind,
        federationRuleId: val.federationRuleId,
      });
    case 'exchange-failed':
      return new WifError(tag, `token exchange failed: ${val}`);
    case 'exchange-rejected':
      return new WifError(tag, rejectionText(val), { status: val.status, rejection: val });
    case 'malformed-response':
      return new WifError(tag, `token endpoint response is malformed: ${val}`);
    default:
      return new WifError('component', `the component failed: it returned an unknown error case ${JSON.stringify(tag)}`);
  }
}
