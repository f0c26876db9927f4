"""A fake OpenAI-compatible chat server on loopback, for judge tests. `policy(user_text)`
returns the reply text; `failures` scripts errors for the first attempts of each prompt."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer


def answers_in(user: str) -> tuple[str, str]:
    """Assistant A's and B's answers from a pairwise prompt (the shipped `pair` layout)."""
    a = re.search(r"### Assistant A\n(.*?)\n### End of assistant A", user, re.DOTALL)
    b = re.search(r"### Assistant B\n(.*?)\n### End of assistant B", user, re.DOTALL)
    return (a.group(1) if a else ""), (b.group(1) if b else "")


def prefers_marker(marker: str = "GOOD"):
    """A content-faithful judge: the answer containing `marker` wins; neither or both: tie."""
    def policy(user: str) -> str:
        a, b = answers_in(user)
        if (marker in a) == (marker in b):
            return "They are equally good. [[C]]"
        return "A is better. [[A]]" if marker in a else "B is better. [[B]]"
    return policy


def always_first(user: str) -> str:
    return "The first answer is better. [[A]]"


class FakeJudgeServer(LoopbackServer):
    def __init__(self, policy, failures: dict | None = None, delay_s: float = 0.0, flaky: dict | None = None):
        """failures: {"status": 500, "times": 2} fails the first 2 attempts of every distinct
        prompt with that status; {"sleep": 2.0, "times": 1} stalls instead (client timeout);
        "only": a substring: fail only prompts containing it.
        flaky: {"p_5xx": 0.3, "p_timeout": 0.1, "p_malformed": 0.05, "timeout_s": 0.7, "seed": 0}:
        every attempt fails at random that way (a 503, a stall past the client's timeout, or a 200
        whose body is not a chat completion)."""
        import random

        self.policy, self.failures, self.delay_s = policy, failures or {}, delay_s
        self.flaky = flaky or {}
        self.rng = random.Random(self.flaky.get("seed", 0))
        self.requests: list[dict] = []
        self.answered: list[tuple[float, str]] = []
        """(time.time() when the reply was written, the call's user message) per successful reply."""
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                with server.lock:
                    server.requests.append({**body, "auth": self.headers.get("Authorization")})
                    n = server.attempts[user] = server.attempts.get(user, 0) + 1
                f = server.failures
                if n <= f.get("times", 0) and f.get("only", "") in user:
                    if "sleep" in f:
                        time.sleep(f["sleep"])
                    else:
                        self.send_response(f.get("status", 500))
                        self.end_headers()
                        self.wfile.write(b'{"error": "scripted failure"}')
                        return
                if server.flaky:
                    with server.lock:
                        roll = server.rng.random()
                    fl = server.flaky
                    if roll < fl.get("p_5xx", 0):
                        self.send_response(503)
                        self.end_headers()
                        return
                    if roll < fl.get("p_5xx", 0) + fl.get("p_timeout", 0):
                        time.sleep(fl.get("timeout_s", 0.7))
                        return
                    if roll < fl.get("p_5xx", 0) + fl.get("p_timeout", 0) + fl.get("p_malformed", 0):
                        data = b'{"choices": []}'
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                if server.delay_s:
                    time.sleep(server.delay_s)
                reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": server.policy(user)}}]}
                data = json.dumps(reply).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                    server.answered.append((time.time(), user))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        self._serve(Handler)
