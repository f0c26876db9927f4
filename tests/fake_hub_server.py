"""A fake Hugging Face Hub on loopback (`harness card --push` tests): the endpoints huggingface_hub
calls to create a repository and make a commit of small files (repos/create, validate-yaml,
preupload answering "regular" for every file, commit taking the NDJSON of base64 contents).
Every commit's files are kept, decoded, by repository."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer


class FakeHub(LoopbackServer):
    def __init__(self):
        self.repos: dict[str, dict] = {}
        """repo id -> {"private": bool, "files": {path: bytes}, "commits": [message]}."""
        self.tokens: list[str] = []
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(404, {"error": "not here"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hub.lock:
                    hub.tokens.append(self.headers.get("Authorization", ""))
                root = hub.url.removesuffix("/v1")
                if self.path == "/api/repos/create":
                    req = json.loads(body)
                    repo = f"{req.get('organization')}/{req['name']}"
                    with hub.lock:
                        hub.repos.setdefault(repo, {"private": req.get("visibility") == "private", "files": {}, "commits": []})
                    return self._send(200, {"url": f"{root}/{repo}", "name": repo})
                if self.path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                if self.path.startswith("/api/models/") and "/preupload/" in self.path:
                    files = json.loads(body)["files"]
                    return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
                if self.path.startswith("/api/models/") and "/commit/" in self.path:
                    repo = self.path.removeprefix("/api/models/").split("/commit/")[0]
                    with hub.lock:
                        entry = hub.repos[repo]
                        for line in body.decode().splitlines():
                            item = json.loads(line)
                            if item["key"] == "header":
                                entry["commits"].append(item["value"]["summary"])
                            elif item["key"] == "file":
                                entry["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    return self._send(200, {"commitUrl": f"{root}/{repo}/commit/{'a' * 40}", "commitOid": "a" * 40, "success": True})
                return self._send(404, {"error": f"no route {self.path}"})

        self._serve(Handler)
