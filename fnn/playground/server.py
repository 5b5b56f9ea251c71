"""The playground's HTTP server: the standard library's ThreadingHTTPServer on 127.0.0.1 only.

    server, thread, url = start(port=0)        # a free port, on a daemon thread (tests)
    serve(port=8050)                           # blocks (python -m fnn.playground)

No dependency: updates reach the page as Server-Sent Events, plain HTTP that browsers read with
EventSource. Every error is JSON {"error": message} with status 400 (bad input) or 404 (unknown
session or path), and the server keeps serving. The endpoints are described in API.md.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import secrets
import threading
import time
import traceback
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast
from urllib.parse import urlsplit

from fnn.errors import FnnError
from fnn.playground import config as cfg
from fnn.playground import export
from fnn.playground.session import Session

__all__ = ["HOST", "Server", "serve", "start"]

HOST = "127.0.0.1"  # never another interface: the playground runs code on request
STATIC = pathlib.Path(__file__).resolve().parent / "static"
IDLE_SECONDS = 600  # a session nobody asked about for this long is dropped
PING_SECONDS = 15
MAX_BODY = 64 * 1024 * 1024
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


_NO_PAGE = """<!doctype html><meta charset="utf-8"><title>fnn playground</title>
<p>The fnn playground's server runs, but its page (fnn/playground/static/index.html) is not installed.
The API is at <a href="/api/options">/api/options</a>; see fnn/playground/API.md.</p>
"""


class BadRequest(Exception):
    """A request the server refuses: status and message go back as JSON."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Server(ThreadingHTTPServer):
    """The HTTP server with its sessions (one per browser tab) and the data given on the command line."""

    daemon_threads = True

    def __init__(self, port: int = 0, data: str | None = None):
        super().__init__((HOST, port), Handler)
        self.sessions: dict[str, Session] = {}
        self.sessions_lock = threading.Lock()
        self.csv_text = None if data is None else pathlib.Path(data).read_text()
        if self.csv_text is not None:
            from fnn.playground import datasets

            datasets.parse_csv(self.csv_text)  # a bad --data file is refused at start, with its message
        self.closing = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, name="fnn-playground-sweep", daemon=True)
        self._sweeper.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def session(self, sid: str) -> Session:
        with self.sessions_lock:
            s = self.sessions.get(sid)
        if s is None:
            raise BadRequest(404, f"unknown session {sid!r} (dropped after {IDLE_SECONDS // 60} idle minutes?): reload")
        s.last_seen = time.monotonic()
        return s

    def add(self, session: Session) -> str:
        sid = secrets.token_hex(8)
        with self.sessions_lock:
            self.sessions[sid] = session
        return sid

    def drop(self, sid: str) -> None:
        with self.sessions_lock:
            s = self.sessions.pop(sid, None)
        if s is None:
            raise BadRequest(404, f"unknown session {sid!r}")
        s.close()

    def drop_idle(self, now: float | None = None) -> list[str]:
        """Drop the sessions nobody asked about for IDLE_SECONDS (and with no event stream open)."""
        now = time.monotonic() if now is None else now
        with self.sessions_lock:
            idle = [k for k, s in self.sessions.items() if now - s.last_seen > IDLE_SECONDS and not s.streams]
        for sid in idle:
            with contextlib.suppress(BadRequest):
                self.drop(sid)
        return idle

    def _sweep(self) -> None:
        while not self.closing.wait(10):
            self.drop_idle()

    def server_close(self) -> None:
        self.closing.set()
        with self.sessions_lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for s in sessions:
            s.close()
        super().server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> Server:
        return cast(Server, self.server)

    def log_message(self, format, *args):  # quiet: the terminal shows the URL, not every request
        pass

    # ------------------------------------------------------------------ replies
    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value, status: int = 200) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        try:
            n = int(length or 0)
        except ValueError:
            raise BadRequest(400, f"Content-Length {length!r} is not a number") from None
        if n > MAX_BODY:
            raise BadRequest(400, f"the request body is {n:,} bytes; at most {MAX_BODY:,} are taken")
        return self.rfile.read(n) if n else b""

    def _json_body(self) -> dict:
        raw = self._body()
        try:
            value = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(400, f"the request body is not JSON ({e}); send a JSON object") from None
        if not isinstance(value, dict):
            raise BadRequest(400, f"the request body must be a JSON object, got {type(value).__name__}")
        return value

    def _handle(self, method: str) -> None:
        try:
            self._route(method, [p for p in urlsplit(self.path).path.split("/") if p])
        except BadRequest as e:
            self._json({"error": str(e)}, e.status)
        except FnnError as e:
            self._json({"error": str(e)}, 400)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a bug must not take the server down: say what happened
            traceback.print_exc()
            self._json({"error": f"internal error: {type(e).__name__}: {e}"}, 500)

    def do_GET(self):
        self._handle("GET")

    def do_HEAD(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    # ------------------------------------------------------------------ routes
    def _route(self, method: str, parts: list[str]) -> None:
        if method == "GET" and (not parts or parts == ["index.html"]):
            return self._static("index.html")
        if method == "GET" and len(parts) == 2 and parts[0] == "static":
            return self._static(parts[1])
        if parts[:1] != ["api"]:
            raise BadRequest(404, f"no page at {self.path!r}; the playground is at /")
        rest = parts[1:]
        if method == "GET" and rest == ["options"]:
            return self._json(cfg.options())
        if rest == ["sessions"] and method == "POST":
            return self._create()
        if len(rest) >= 2 and rest[0] == "sessions":
            session, tail = self.app.session(rest[1]), rest[2:]
            if method == "DELETE" and not tail:
                self.app.drop(rest[1])
                return self._json({})
            if method == "POST" and tail == ["config"]:
                return self._json(session.configure(self._json_body().get("config", {})))
            if method == "POST" and tail == ["action"]:
                return self._json({"update": session.action(str(self._json_body().get("action")))})
            if method == "POST" and tail == ["data"]:
                text = self._body().decode("utf-8", errors="replace")
                return self._json(session.upload(text))
            if method == "GET" and tail == ["events"]:
                return self._events(session)
            if method == "GET" and tail == ["status"]:
                return self._json(session.status())
            if method == "GET" and tail == ["export.py"]:
                return self._send(
                    200,
                    export.script(session).encode(),
                    "text/x-python; charset=utf-8",
                    {"Content-Disposition": 'attachment; filename="playground_run.py"'},
                )
            if method == "GET" and tail == ["export.safetensors"]:
                return self._send(
                    200,
                    export.checkpoint(session),
                    "application/octet-stream",
                    {"Content-Disposition": 'attachment; filename="playground_run.safetensors"'},
                )
        raise BadRequest(404, f"no endpoint {method} {self.path!r}; see fnn/playground/API.md")

    def _static(self, name: str) -> None:
        if name == "index.html" and not (STATIC / name).is_file():  # a source tree without the page
            return self._send(200, _NO_PAGE.encode(), "text/html; charset=utf-8")
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():  # no path traversal: only files of static/ itself
            raise BadRequest(404, f"no file {name!r} in the playground's static folder")
        kind = TYPES.get(path.suffix, "application/octet-stream")
        self._send(200, path.read_bytes(), kind + ("; charset=utf-8" if kind.startswith("text") else ""))

    def _create(self) -> None:
        given = self._json_body().get("config", {})
        if not isinstance(given, dict):
            raise BadRequest(400, f"config must be a JSON object of settings, got {type(given).__name__}")
        csv_text = self.app.csv_text
        if csv_text is not None and "dataset" not in given:
            given = {**given, "dataset": "csv"}  # --data file.csv: the page opens on that data
        session = Session(given, csv_text=csv_text)
        sid = self.app.add(session)
        self._json({"id": sid, "config": dict(session.config), "update": session.latest})

    def _events(self, session: Session) -> None:
        """Server-Sent Events: the newest Update whenever there is one (never a backlog), a ping every 15 s."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent = None  # (updates, generation, history end, data_version) of the last event sent
        with session.lock:
            session.streams += 1
        try:
            while not self.app.closing.is_set() and not session.closed:
                with session.changed:
                    if sent is not None and session.latest["updates"] == sent[0]:
                        session.changed.wait(PING_SECONDS)
                    if session.closed:
                        break
                    event, sent = _event(session, sent)
                payload = b": ping\n\n" if event is None else b"data: " + json.dumps(event).encode() + b"\n\n"
                session.last_seen = time.monotonic()
                self.wfile.write(payload)
                self.wfile.flush()
        except OSError:  # the page went away (BrokenPipe, ConnectionReset)
            pass
        finally:
            with session.lock:
                session.streams -= 1


def _event(session: Session, sent: tuple | None) -> tuple[dict | None, tuple | None]:
    """The Update a stream sends next (None: nothing new) and what it will then have sent. A stream
    that skipped updates gets their history points (and the data, if it changed) in this one."""
    latest: dict = session.latest
    if sent is not None and latest["updates"] == sent[0]:
        return None, sent
    update = dict(latest)
    generation, _, end = session.latest_meta
    if sent is None or update["updates"] != sent[0] + 1:
        update["history"], reset = session.history_since(*((-1, 0) if sent is None else sent[1:3]))
        update["history_reset"] = reset or update["history_reset"]
        if update["points"] is None and (sent is None or update["data_version"] != sent[3]):
            update["points"] = session.points()
    return update, (update["updates"], generation, end, update["data_version"])


def start(port: int = 0, data: str | None = None) -> tuple[Server, threading.Thread, str]:
    """The server on a daemon thread: (server, thread, url); port 0 takes a free port. Stop it with
    server.shutdown(); server.server_close()."""
    server = Server(port, data)
    thread = threading.Thread(  # a short poll: shutdown() returns at once
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fnn-playground-http", daemon=True
    )
    thread.start()
    return server, thread, server.url


def serve(port: int = 8050, data: str | None = None, open_browser: bool = True) -> None:
    """Serve the playground on http://127.0.0.1:port/ until Ctrl-C; open it in the browser first."""
    server = Server(port, data)
    print(f"fnn playground at {server.url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
