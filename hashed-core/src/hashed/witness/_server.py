"""A C2SP tlog-witness over HTTP, on the standard library's threading server (`hashed witness serve`).

    POST /add-checkpoint           the tlog-witness call
    GET  /checkpoint/<origin>      the latest checkpoint cosigned for a log, with the cosignature (so a client
                                   told 409 can show what the witness holds, as evidence)

A witness is meant to be run by someone other than the log's operator, on any small machine: it needs no web
framework and no database server, only hashed-core.
"""

from __future__ import annotations

import base64
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hashed.errors import NoteError
from hashed.protocol import (
    Checkpoint,
    SigningIdentity,
    WitnessDecision,
    cosign_checkpoint,
    decide_add_checkpoint,
    parse_add_checkpoint,
)
from hashed.witness._store import WitnessStore

__all__ = ["WitnessServer"]

_MAX_BODY = 64 * 1024  # 63 proof lines and a checkpoint with many signatures fit many times over


class WitnessServer(ThreadingHTTPServer):
    """Serve one witness key over HTTP/1.1 until `shutdown()`.

    Args:
        address: (host, port); port 0 lets the system choose (see `url`).
        name: the witness's key name, e.g. `witness.example.com/w1`.
        identity: its Ed25519 key.
        store: its database.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], name: str, identity: SigningIdentity, store: WitnessStore) -> None:
        self.name = name
        self.identity = identity
        self.store = store
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """The submission prefix clients use."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> threading.Thread:
        """Serve on a background thread (tests, embedding); `shutdown()` stops it."""
        thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="hashed-witness", daemon=True)
        thread.start()
        return thread

    def add_checkpoint(self, body: bytes) -> tuple[int, str, str]:
        """Decide one request; returns (status, content type, body)."""
        try:
            request = parse_add_checkpoint(body)
        except NoteError as exc:
            return 400, "text/plain; charset=utf-8", f"{exc}\n"
        try:
            origin = Checkpoint.parse(request.note[: request.note.rfind("\n\n") + 1]).origin
        except NoteError as exc:
            return 400, "text/plain; charset=utf-8", f"not a checkpoint: {exc}\n"
        logs = self.store.logs()

        def decide(held: tuple[Checkpoint, str] | None) -> tuple[WitnessDecision, str]:
            decision = decide_add_checkpoint(request, logs, held[0] if held else None)
            signed = decision.signed
            if decision.status == 200 and signed is not None:
                line = cosign_checkpoint(signed.checkpoint, self.name, self.identity, int(time.time())).line
                self.store.store_latest(signed.checkpoint, signed.raw + line)
                return decision, line
            if decision.misbehaviour and signed is not None and held is not None:
                proof = "".join(base64.b64encode(p).decode() + "\n" for p in request.proof)
                self.store.keep_evidence(origin, decision.misbehaviour, decision.detail, held[1], signed.raw, proof)
            return decision, ""

        decision, line = self.store.atomically(origin, decide)
        if decision.status == 200:
            return 200, "text/plain; charset=utf-8", line
        if decision.status == 409 and decision.conflict_size is not None:
            return 409, "text/x.tlog.size", f"{decision.conflict_size}\n"
        return decision.status, "text/plain; charset=utf-8", f"{decision.detail}\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: WitnessServer
    timeout = 30

    def do_POST(self) -> None:
        if self.path != "/add-checkpoint":
            self._answer(404, "text/plain; charset=utf-8", "not found: POST /add-checkpoint\n")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > _MAX_BODY:
            self._answer(400, "text/plain; charset=utf-8", f"a body of at most {_MAX_BODY} bytes, with its length\n")
            self.close_connection = True
            return
        self._answer(*self.server.add_checkpoint(self.rfile.read(int(length))))

    def do_GET(self) -> None:
        prefix = "/checkpoint/"
        held = None
        if self.path.startswith(prefix):
            held = self.server.store.latest(urllib.parse.unquote(self.path[len(prefix) :]))
        if held is None:
            self._answer(404, "text/plain; charset=utf-8", "no checkpoint for that log\n")
        else:
            self._answer(200, "text/plain; charset=utf-8", held[1])

    def _answer(self, status: int, content_type: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet by default: the CLI prints one line per request itself when asked."""
