"""A fake OpenAI-compatible candidate server on loopback (the endpoint backend's tests).

- /v1/completions and /v1/chat/completions, streamed (server-sent events) or not;
- `reply(prompt)` gives the generated text, streamed word by word (`token_delay_s` apart, after
  `first_delay_s`); usage is sent in a last chunk when asked for (`usage=False`: never);
- echo + logprobs: the prompt's "tokens" are its words (with their leading space), each with a
  log-probability of -len(word)/2 (so the scores are known exactly); `echo=False` behaves like a
  server that can't return prompt logprobs;
- `fail_first`: that many attempts of each distinct request get a 503 first; `fail_when(prompt)`:
  every attempt of the requests it is true for gets a 503;
- counts requests in flight, so tests can see real concurrency; `slots`: serves at most that many
  at once (the rest wait), a server with a capacity for the load tests."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer


def word_tokens(text: str) -> list[tuple[str, int]]:
    """(token, character offset) pairs: each word with the whitespace before it."""
    return [(m.group(0), m.start()) for m in re.finditer(r"\s*\S+|\s+$", text)]


def word_logprob(token: str) -> float:
    return -len(token.strip()) / 2


class FakeOpenAIServer(LoopbackServer):
    def __init__(self, reply=lambda prompt: "fresh coffee today", echo: bool = True, usage: bool = True,
                 first_delay_s: float = 0.0, token_delay_s: float = 0.0, fail_first: int = 0, fail_status: int = 503,
                 fail_when=None, slots: int | None = None):
        self.reply, self.echo, self.usage = reply, echo, usage
        self.first_delay_s, self.token_delay_s = first_delay_s, token_delay_s
        self.fail_first, self.fail_status, self.fail_when = fail_first, fail_status, fail_when
        self.requests: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(slots) if slots else None
        """At most this many requests are served at once (the rest queue): a server with a capacity."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = json.dumps(body, sort_keys=True)
                with server.lock:
                    server.requests.append({**body, "path": self.path, "auth": self.headers.get("Authorization")})
                    n = server.attempts[key] = server.attempts.get(key, 0) + 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    prompt = body["messages"][-1]["content"] if "messages" in body else body.get("prompt", "")
                    if n <= server.fail_first or (server.fail_when is not None and server.fail_when(prompt)):
                        self._send(server.fail_status, {"error": "busy"})
                    elif self.path.endswith("/completions"):
                        if server.slots is not None:
                            with server.slots:
                                self._complete(body, chat=self.path.endswith("/chat/completions"))
                        else:
                            self._complete(body, chat=self.path.endswith("/chat/completions"))
                    else:
                        self._send(404, {"error": f"no route {self.path}"})
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _complete(self, body: dict, chat: bool):
                prompt = body["messages"][-1]["content"] if chat else body["prompt"]
                time.sleep(server.first_delay_s)
                text = server.reply(prompt)[: 10_000]
                for s in body.get("stop") or []:
                    if s in text:
                        text = text[: text.index(s)]
                words = word_tokens(text)[: body.get("max_tokens", 16)]
                usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(words),
                         "total_tokens": len(prompt.split()) + len(words)}
                if not body.get("stream"):
                    choice = {"index": 0, "text": "".join(w for w, _ in words), "finish_reason": "stop"}
                    if body.get("echo") and body.get("logprobs") is not None:
                        choice["logprobs"] = self._logprobs(prompt, words) if server.echo else \
                            {"tokens": [w for w, _ in words], "token_logprobs": [-1.0] * len(words),
                             "text_offset": [len(prompt) + o for _, o in words], "top_logprobs": None}
                    self._send(200, {"id": "x", "object": "text_completion", "model": body["model"], "choices": [choice],
                                     **({"usage": usage} if server.usage else {})})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for w, _ in words:
                    piece = {"index": 0, "delta": {"content": w}} if chat else {"index": 0, "text": w}
                    self.wfile.write(f"data: {json.dumps({'choices': [piece]})}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(server.token_delay_s)
                if server.usage and (body.get("stream_options") or {}).get("include_usage"):
                    self.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            @staticmethod
            def _logprobs(prompt: str, generated: list[tuple[str, int]]) -> dict:
                toks = word_tokens(prompt) + [(w, len(prompt) + o) for w, o in generated[:1]]
                logprobs = [None] + [word_logprob(t) for t, _ in toks[1:]]
                # The top alternative is the token itself unless the word is "wrong".
                tops = [None] + [{t: word_logprob(t)} if "wrong" not in t else {" right": 0.0, t: word_logprob(t)} for t, _ in toks[1:]]
                return {"tokens": [t for t, _ in toks], "token_logprobs": logprobs, "text_offset": [o for _, o in toks],
                        "top_logprobs": tops}

        self._serve(Handler)
