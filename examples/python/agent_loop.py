"""An agent loop over plain HTTP with requests: a session, a streamed command (server-sent
events) and a blocked command the agent recovers from. The "model" is a fixed plan so the example
is deterministic; a real agent asks an LLM for the next command, and for recover(), with the
transcript so far.

    pip install requests   # Debian: apt-get install python3-requests
    GOVERNED_EXECUTOR_URL=http://127.0.0.1:10000 GOVERNED_EXECUTOR_API_KEY=... \\
      python3 examples/python/agent_loop.py
"""

import json
import os
import sys
from datetime import datetime, timezone

import requests

URL = os.environ.get("GOVERNED_EXECUTOR_URL", "http://127.0.0.1:10000").rstrip("/")
API_KEY = os.environ.get("GOVERNED_EXECUTOR_API_KEY")
# Every call has a deadline: connect, then each read (a streamed command sends a heartbeat).
TIMEOUT = (5, 120)

http = requests.Session()
if API_KEY:
    http.headers["X-API-Key"] = API_KEY

PLAN = [
    # A session keeps the working directory and exported variables between commands.
    {"command": "mkdir -p project && cd project && export GREETING=hello"},
    {"command": "printf 'print(6 * 7)\\n' > answer.py && echo \"$GREETING from $(pwd)\""},
    {"command": "for i in 1 2 3; do echo tick $i; sleep 0.3; done; python3 answer.py", "stream": True},
    {"command": "sudo id -u"},
]


class Refused(Exception):
    """An answer other than 2xx: the service's error envelope {"error": {code, message, hint?}}."""

    def __init__(self, response):
        try:
            error = response.json()["error"]
            text = f"{error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            text = response.text[:200]
        super().__init__(f"HTTP {response.status_code} {text}")


def call(method, path, **kwargs):
    response = http.request(method, URL + path, timeout=TIMEOUT, **kwargs)
    if not response.ok:
        raise Refused(response)
    return response


def execute(step, session_id):
    body = {"command": step["command"], "sessionId": session_id}
    if not step.get("stream"):
        return call("POST", "/execute", json=body).json()
    # Accept: text/event-stream streams the output: events started, stdout, stderr, heartbeat,
    # then result (the same body as the buffered answer) or error.
    response = call("POST", "/execute", json=body, headers={"Accept": "text/event-stream"}, stream=True)
    with response:
        for event, data in server_sent_events(response):
            if event in ("stdout", "stderr"):
                now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                sys.stdout.write(f"  [{event} {now}] {data['text']}")
                sys.stdout.flush()
            elif event == "result":
                return data
            elif event == "error":
                raise RuntimeError(f"refused while streaming: {data['error']['code']}")
    raise RuntimeError("the stream ended without a result")


def server_sent_events(response):
    """(event, data) pairs of a text/event-stream answer; data is JSON."""
    event, data = None, []
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if event and data:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[len("event:"):].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:"):].lstrip(" "))


def recover(step, rule):
    """The model's answer to a block: an allowed way to the same goal, or None (give up on it)."""
    if rule == "deny-privilege-escalation" and step["command"].startswith("sudo "):
        return {"command": step["command"][len("sudo "):]}
    return None


def main():
    session = call("POST", "/sessions").json()["session"]
    print(f"session {session['id']}")
    transcript = []
    try:
        for step in PLAN:
            while step:
                print(f"$ {step['command']}")
                answer = execute(step, session["id"])
                result = answer["result"]
                decision = result.get("decision") or {}
                transcript.append(
                    {"command": step["command"], "outcome": result["outcome"], "rule": decision.get("rule")}
                )
                if result["blocked"]:
                    # Blocked is an answer, not an error: which rule said no, then what to do.
                    print(f"  BLOCKED by {decision.get('rule')}: {result.get('message')}")
                    step = recover(step, decision.get("rule"))
                    continue
                if not step.get("stream"):
                    for line in result["stdout"].splitlines():
                        print(f"  {line}")
                cwd = (answer.get("session") or {}).get("cwd")
                print(f"  exit {result['exitCode']}; the next command starts in {cwd}")
                step = None
    except Refused as refused:
        # Refusals before a command runs: a bad key, a rate limit, a busy session, enforcement down.
        print(f"refused: {refused}", file=sys.stderr)
        return 1
    finally:
        deleted = call("DELETE", f"/sessions/{session['id']}").json()["deleted"]
        print(f"session {session['id']} closed: {json.dumps(deleted)}")
    print(f"transcript {json.dumps(transcript)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
