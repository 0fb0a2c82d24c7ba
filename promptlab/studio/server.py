"""The studio's HTTP server: the standard library's ``ThreadingHTTPServer``.

One thread per connection (HTTP/1.1 keep-alive), at most ``max_connections`` at once
(beyond that a connection gets 503 at once, so the accept loop never blocks); every
socket read has a timeout, bodies have a size limit, and the answers come from
``StudioApp.handle``, which never raises. ``run`` is what ``promptlab studio start``
does: initialize the database, make sure the admin can sign in, listen, and stop
cleanly on SIGINT/SIGTERM after the requests in progress are answered.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, TextIO, Union

from promptlab import __version__
from promptlab.studio.api import Request, Response, StudioApp, StudioConfig, json_bytes
from promptlab.studio.auth import StudioError

log = logging.getLogger("promptlab.studio")

_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)


def _error_body(message: str) -> bytes:
    return json_bytes({"success": False, "message": message, "detail": message})


class StudioHandler(BaseHTTPRequestHandler):
    """Reads one request, asks the app, writes the answer."""

    protocol_version = "HTTP/1.1"
    server_version = f"PromptLabStudio/{__version__}"
    sys_version = ""
    server: "StudioServer"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # every read on this socket
        super().setup()

    # Every method goes to the app, which answers 404/405 for what it does not serve.
    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def handle_expect_100(self) -> bool:
        """Refuse a too large body before the client sends it."""
        error = self._length_error()
        if error is not None:
            self._send(error)
            return False
        return super().handle_expect_100()

    def _length_error(self) -> Optional[Response]:
        if self.headers.get("Transfer-Encoding", "identity").lower() != "identity":
            return Response(411, _error_body("Send the body with a Content-Length "
                                             "(chunked bodies are not accepted)"))
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return None
        if len(set(lengths)) != 1 or not lengths[0].strip().isdigit():
            return Response(400, _error_body("Invalid Content-Length"))
        if int(lengths[0]) > self.server.app.config.max_body_bytes:
            limit = self.server.app.config.max_body_bytes // (1024 * 1024)
            return Response(413, _error_body(f"The request body is larger than {limit} MB"))
        return None

    def _serve(self) -> None:
        self.server.request_started()
        try:
            error = self._length_error()
            if error is not None:
                self.close_connection = True
                self._send(error)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) != length:  # the client went away mid-body
                self.close_connection = True
                return
            request = Request(self.command, self.path, self.headers, body,
                              self.client_address[0])
            self._send(self.server.app.handle(request))
        finally:
            self.server.request_finished()

    def version_string(self) -> str:
        return self.server_version

    def _send(self, response: Response) -> None:
        self.log_request(response.status, len(response.body))
        self.send_response_only(response.status)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())
        if response.status != 204:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        if response.content_type.startswith("application/json"):
            self.send_header("Cache-Control", "no-store")
        for name, value in _SECURITY_HEADERS:
            self.send_header(name, value)
        for name, value in response.headers:
            self.send_header(name, value)
        if self.server.stopping or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and response.status not in (204, 304):
            self.wfile.write(response.body)

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        """Errors found while parsing the request line or headers, as JSON."""
        short = self.responses.get(code, ("Error",))[0]
        self.log_error("code %d, message %s", code, message or short)
        self.close_connection = True
        self._send(Response(code, _error_body(message or short)))

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.client_address[0], format % args)

    def log_error(self, format: str, *args: Any) -> None:
        log.warning("%s %s", self.client_address[0], format % args)


class StudioServer(ThreadingHTTPServer):
    """A threading HTTP server for one ``StudioApp``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: StudioApp, host: Optional[str] = None,
                 port: Optional[int] = None) -> None:
        config = app.config
        host = config.host if host is None else host
        port = config.port if port is None else port
        self.app = app
        self.request_timeout = config.request_timeout
        self.stopping = False
        self._slots = threading.BoundedSemaphore(config.max_connections)
        self._busy = 0
        self._idle = threading.Condition()
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except (socket.gaierror, UnicodeError) as exc:
            raise StudioError(f"cannot listen on {host}: {exc}") from None
        self.address_family = infos[0][0]
        try:
            super().__init__(infos[0][4][:2], StudioHandler)
        except OSError as exc:
            raise StudioError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                              ) from None

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can hang on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def host(self) -> str:
        return self.server_address[0]

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def url(self) -> str:
        """The address to open; loopback when listening on every interface."""
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    # --- connections ----------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        body = _error_body("The studio is serving too many connections; try again.")
        head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
        try:
            request.settimeout(1.0)
            request.sendall(head.encode("ascii") + body)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("%s: connection ended: %s", client_address[0], exc)
        else:
            log.exception("%s: error while serving the connection", client_address[0])

    # --- requests in progress ---------------------------------------------------------

    def request_started(self) -> None:
        with self._idle:
            self._busy += 1

    def request_finished(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in progress; False when ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let the requests in progress finish, close the socket.
        Call from another thread than the one in ``serve_forever``."""
        self.stopping = True
        self.shutdown()
        self.server_close()
        self.wait_idle(timeout)


def run(config: StudioConfig, out: TextIO = sys.stdout) -> int:
    """``promptlab studio start``: initialize ``config.db_file``, give the admin a
    password if it has none (printed once), serve until SIGINT/SIGTERM. Returns the
    exit status; StudioError or DatabaseError for what prevents starting."""
    from promptlab.sqlite.admin import (
        default_password_warning, generate_admin_password, password_from_environment)
    from promptlab.sqlite.migrations import upgrade

    try:
        password_from_environment()  # checked before the database is touched
    except ValueError as exc:
        raise StudioError(str(exc)) from None
    migrated = upgrade(config.db_file)
    if migrated.count:
        print(f"Applied {migrated.count} migration(s) to {migrated.path}.", file=out)
    print(f"Database: {migrated.path} (revision {migrated.current}).", file=out)
    password = generate_admin_password(migrated.path)
    if password is not None:
        print("Created the admin user's password; it is shown only this once:", file=out)
        print(f"  username: admin\n  password: {password}", file=out)
    config.db_file = migrated.path
    app = StudioApp(config)
    source = ("PROMPTLAB_SECRET_KEY" if app.secret_source == "environment"
              else app.secret_source)
    print(f"Tokens are signed with the secret in {source}.", file=out)
    server = StudioServer(app)
    # A database the original PromptLab wrote keeps its admin/admin account: serve it
    # on this machine only (with a warning), never to the network.
    warning = default_password_warning(migrated.path)
    if warning and not server.is_loopback:
        server.server_close()
        raise StudioError(f"refusing to listen on {server.host}, reachable from other "
                          f"machines: {warning}")
    if warning:
        print(f"Warning: {warning}.", file=out)
    if not server.is_loopback:
        print(f"Listening on {server.host}, reachable from other machines: put a reverse "
              "proxy with TLS in front (see the README).", file=out)
    print(f"PromptLab Studio is running at {server.url} (Ctrl-C to stop).", file=out,
          flush=True)
    return serve_until_signal(server, out)


def serve_until_signal(server: StudioServer, out: TextIO = sys.stdout) -> int:
    """Serve on this (main) thread until SIGINT or SIGTERM, then stop cleanly."""
    received: list = []

    def on_signal(signum: int, frame: Any) -> None:
        if not received:
            received.append(signum)
            server.stopping = True
            threading.Thread(target=server.shutdown, name="studio-shutdown",
                             daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever(poll_interval=0.25)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stopping = True
        server.server_close()
        finished = server.wait_idle(10.0)
    name = signal.Signals(received[0]).name if received else "shutdown"
    print(f"Stopped ({name}){'' if finished else '; some requests were cut off'}.",
          file=out, flush=True)
    return 0


def make_server(db_file: Union[str, "os.PathLike[str]"], host: str = "127.0.0.1",
                port: int = 0, secret: Optional[bytes] = None,
                **settings: Any) -> StudioServer:
    """A server for ``db_file`` (not yet serving): for tests and embedding. Call
    ``serve_forever()`` in a thread and ``stop()`` to end it."""
    config = StudioConfig(db_file=os.fspath(db_file), host=host, port=port, **settings)
    return StudioServer(StudioApp(config, secret=secret))
