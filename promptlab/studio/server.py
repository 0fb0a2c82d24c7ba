"""The studio's own HTTP server, for ``promptlab studio start``: the standard library's
``ThreadingHTTPServer`` carrying the studio's WSGI application (``wsgi.StudioWSGI``;
a team may serve that with a production WSGI server instead, see the README).

One thread per connection (HTTP/1.1 keep-alive), at most ``max_connections`` at once.
Slow clients must not starve the others (issue 12):

- each request has deadlines counted from the moment its connection was ready for it:
  ``header_timeout`` for the request line and headers (so also for an idle
  keep-alive connection) and ``request_timeout`` for the whole request with its body
  (``limits.DeadlineSocketIO``), however slowly the bytes trickle in;
- when every slot is taken, the connection that has waited longest for its client
  (for a request head, or a body) is closed to make room, so a crowd of slow or idle
  connections cannot keep everyone else at 503;
- the application decides from the head alone whether a body is read (a stranger
  gets 401 before sending one) and reserves its size from a budget; ``100 Continue``
  is sent only when it starts reading; a connection whose body was not read is
  closed after the answer, so the unread body is never parsed as a request.

``open_server`` makes the application and listens; ``serve_until_signal`` serves and
stops cleanly on SIGINT/SIGTERM after the requests in progress are answered. Getting
the database ready first (migrations, the admin's password) is the command layer's
(``promptlab.commands.studio``).
"""

from __future__ import annotations

import errno
import io
import ipaddress
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, TextIO, Tuple, Union
from urllib.parse import unquote

from promptlab import __version__
from promptlab.studio.app import StudioApp
from promptlab.studio.auth import StudioError
from promptlab.studio.config import StudioConfig
from promptlab.studio.http import Response, json_bytes
from promptlab.studio.limits import DeadlineSocketIO
from promptlab.studio.wsgi import StudioWSGI

log = logging.getLogger("promptlab.studio")


def _error_body(message: str) -> bytes:
    return json_bytes({"success": False, "message": message, "detail": message})


class _Connections:
    """The open connections, and since when each has been waiting for its client
    (None while the studio works on its request or writes the answer)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: Dict[socket.socket, Optional[float]] = {}
        self._lock = threading.Lock()

    def open(self, sock: socket.socket) -> bool:
        """Take a slot for a new connection, closing the one that has waited longest
        for its client when all are taken; False when every connection is busy."""
        with self._lock:
            if len(self._waiting) >= self.limit:
                waiting = [(since, id(s), s) for s, since in self._waiting.items()
                           if since is not None]
                if not waiting:
                    return False
                victim = min(waiting)[2]
                del self._waiting[victim]
                try:  # its thread's read returns at once, and the thread ends
                    victim.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._waiting[sock] = time.monotonic()
            return True

    def waiting(self, sock: socket.socket, since: float) -> None:
        with self._lock:
            if sock in self._waiting:
                self._waiting[sock] = since

    def busy(self, sock: socket.socket) -> bool:
        """Mark the connection busy; False when it was closed to make room."""
        with self._lock:
            if sock not in self._waiting:
                return False
            self._waiting[sock] = None
            return True

    def close(self, sock: socket.socket) -> None:
        with self._lock:
            self._waiting.pop(sock, None)


class _BodyInput:
    """``wsgi.input``: the request body straight from the socket, at most its
    Content-Length, within the request's deadline. Sends ``100 Continue`` at the first
    read, when the client asked for it."""

    def __init__(self, handler: "StudioHandler", length: int) -> None:
        self.handler = handler
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        handler = self.handler
        if handler.expect_continue:
            handler.expect_continue = False
            handler.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = handler.rfile.read(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = -1  # cut short: the connection is closed after the answer
        elif self.remaining == 0 and not handler.server.connections.busy(handler.connection):
            raise ConnectionAbortedError("the connection was closed to make room")
        return data

    def readline(self, size: int = -1) -> bytes:  # PEP 3333 asks for it; unused here
        return self.read(size)


class StudioHandler(BaseHTTPRequestHandler):
    """Reads one request head, gives it to the WSGI application, writes the answer."""

    protocol_version = "HTTP/1.1"
    server_version = f"PromptLabStudio/{__version__}"
    sys_version = ""
    server: "StudioServer"

    def setup(self) -> None:
        super().setup()
        self.deadline = time.monotonic() + self.server.config.header_timeout
        self.expect_continue = False
        self.rfile.close()  # replaced by one whose reads end at the request's deadline
        self.rfile = io.BufferedReader(DeadlineSocketIO(self.connection,
                                                        lambda: self.deadline), 65536)

    def handle_one_request(self) -> None:
        self.ready_at = time.monotonic()
        self.deadline = self.ready_at + self.server.config.header_timeout
        self.expect_continue = False
        self.server.connections.waiting(self.connection, self.ready_at)
        super().handle_one_request()

    def handle_expect_100(self) -> bool:
        # Not yet: the application may refuse the request from its head (401, 413);
        # ``_BodyInput`` sends it when the body is wanted.
        self.expect_continue = True
        return True

    # Every method goes to the app, which answers 404/405 for what it does not serve.
    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _framing_error(self) -> Optional[Response]:
        if self.headers.get("Transfer-Encoding", "identity").lower() != "identity":
            return Response(411, _error_body("Send the body with a Content-Length "
                                             "(chunked bodies are not accepted)"))
        lengths = self.headers.get_all("Content-Length") or []
        if lengths and (len(set(lengths)) != 1 or not lengths[0].strip().isdigit()):
            return Response(400, _error_body("Invalid Content-Length"))
        return None

    def _serve(self) -> None:
        config = self.server.config
        error = self._framing_error()
        if error is not None:
            self.close_connection = True
            self._send(error.status, StudioWSGI.response_headers(error), error.body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        self.deadline = self.ready_at + config.request_timeout  # headers and body
        if length == 0 and not self.server.connections.busy(self.connection):
            self.close_connection = True
            return
        body = _BodyInput(self, length)
        self.server.request_started()
        try:
            status, headers, chunks = self._call(self._environ(body, length))
            if body.remaining != 0:  # refused or cut short: never parse it as a request
                self.close_connection = True
            self._send(status, headers, b"".join(chunks))
        finally:
            self.server.request_finished()

    def _environ(self, body: _BodyInput, length: int) -> Dict[str, Any]:
        path, _, query = self.path.partition("?")
        environ: Dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path.split("#", 1)[0], encoding="latin-1"),
            "QUERY_STRING": query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length) if length else "",
            "REMOTE_ADDR": self.client_address[0], "SERVER_NAME": self.server.host,
            "SERVER_PORT": str(self.server.port), "SERVER_PROTOCOL": self.request_version,
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": body,
            "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for name in set(self.headers.keys()):
            if "_" in name:  # HTTP_X_FORWARDED_FOR must not come from X_Forwarded-For
                continue
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = ",".join(self.headers.get_all(name) or [])
        return environ

    def _call(self, environ: Dict[str, Any]) -> Tuple[int, List[Tuple[str, str]],
                                                       List[bytes]]:
        started: List[Any] = []

        def start_response(status: str, headers: List[Tuple[str, str]],
                           exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: chunks.append(data)

        chunks: List[bytes] = []
        result = self.server.wsgi(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(started[0].split()[0]), started[1], chunks

    def version_string(self) -> str:
        return self.server_version

    def _send(self, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
        # Reads left the socket with what remained of the request's deadline; a
        # reader as slow as that must not hold the thread longer than one request.
        self.connection.settimeout(self.server.config.request_timeout)
        self.log_request(status, len(body))
        self.send_response_only(status)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())
        for name, value in headers:
            self.send_header(name, value)
        if self.server.stopping or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        """Errors found while parsing the request line or headers, as JSON."""
        short = self.responses.get(code, ("Error",))[0]
        self.log_error("code %d, message %s", code, message or short)
        self.close_connection = True
        response = Response(code, _error_body(message or short))
        self._send(code, StudioWSGI.response_headers(response), response.body)

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
        self.config = config
        self.wsgi = StudioWSGI(app)
        self.stopping = False
        self.connections = _Connections(config.max_connections)
        self._busy = 0
        self._idle = threading.Condition()
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except (socket.gaierror, UnicodeError) as exc:
            raise StudioError(f"cannot listen on {host}: {exc}") from None
        family, _, _, _, sockaddr = infos[0]
        ip, ip_port = sockaddr[0], sockaddr[1]
        if not isinstance(ip, str) or not isinstance(ip_port, int):
            # Not an AF_INET/AF_INET6 (host, port[, flowinfo, scope_id]) address.
            raise StudioError(f"cannot listen on {host}: not an IP address ({sockaddr!r})")
        self.address_family = family
        try:
            super().__init__((ip, ip_port), StudioHandler)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = ("; another program uses that port: choose another with -p PORT, "
                        "or -p 0 for a free one")
            raise StudioError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}"
                              ) from None

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can hang on DNS.
        socketserver.TCPServer.server_bind(self)
        # server_address is now the socket's getsockname(): (host, port[, ...]) with a
        # str host (the stub's type also allows the bytes a constructor may be given).
        self.server_name, self.server_port = self.socket.getsockname()[:2]

    @property
    def host(self) -> str:
        return self.server_name

    @property
    def port(self) -> int:
        return self.server_port

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
        if not self.connections.open(request):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.close(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.close(request)

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

    def shutdown_soon(self) -> None:
        """Ask ``serve_forever`` to return, without waiting for it: safe from a signal
        handler or an event-loop callback on the serving thread's side."""
        self.stopping = True
        threading.Thread(target=self.shutdown, name="studio-shutdown", daemon=True).start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let the requests in progress finish, close the socket.
        Call from another thread than the one in ``serve_forever``."""
        self.stopping = True
        self.shutdown()
        self.server_close()
        self.wait_idle(timeout)


def open_server(config: StudioConfig, out: TextIO = sys.stdout) -> "StudioServer":
    """The studio's application for ``config.db_file`` (migrated already) and a server
    listening for it, not yet serving. Says on ``out`` where the token secret is."""
    app = StudioApp(config)
    source = ("PROMPTLAB_SECRET_KEY" if app.secret_source == "environment"
              else app.secret_source)
    print(f"Tokens are signed with the secret in {source}.", file=out)
    return StudioServer(app)


def serve_until_signal(server: StudioServer, out: TextIO = sys.stdout) -> int:
    """Serve on this (main) thread until SIGINT or SIGTERM, then stop cleanly."""
    received: list = []

    def on_signal(signum: int, frame: Any) -> None:
        if not received:
            received.append(signum)
            server.shutdown_soon()

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
