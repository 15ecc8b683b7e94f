"""An application written against the official Python SDK, driven by the
Rust test `sdk_python`: each line on stdin is a command, each answer one
JSON line on stdout.

  create   client.messages.create(...) and print the reply's text
  stream   client.messages.stream(...): print each text delta as it
           arrives, then the whole text

The client is built once, as an application builds it: `Anthropic()` with no
credentials, so the SDK resolves them from ANTHROPIC_CONFIG_DIR and
ANTHROPIC_PROFILE (or `base_url` and a key given on the command line:
`client.py BASE_URL api_key KEY`, which the SDK sends as `x-api-key`, or
`client.py BASE_URL auth_token KEY`, sent as `Authorization: Bearer`).
"""

import json
import sys

import anthropic

if len(sys.argv) == 4 and sys.argv[2] in ("api_key", "auth_token"):
    client = anthropic.Anthropic(
        base_url=sys.argv[1], max_retries=0, **{sys.argv[2]: sys.argv[3]}
    )
else:
    client = anthropic.Anthropic(max_retries=0)

for line in sys.stdin:
    command = line.strip()
    try:
        if command == "create":
            message = client.messages.create(
                model="claude-test",
                max_tokens=16,
                messages=[{"role": "user", "content": "hello"}],
            )
            answer = {"ok": True, "text": message.content[0].text}
        elif command == "stream":
            with client.messages.stream(
                model="claude-test",
                max_tokens=16,
                messages=[{"role": "user", "content": "hello"}],
            ) as stream:
                for event in stream:
                    if event.type == "content_block_delta":
                        print(json.dumps({"delta": event.delta.text}), flush=True)
                answer = {"ok": True, "text": stream.get_final_text()}
        else:
            answer = {"ok": False, "error": f"unknown command {command!r}"}
    except Exception as error:  # reported to the test, which asserts on it
        answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    print(json.dumps(answer), flush=True)
