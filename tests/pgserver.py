"""A throwaway PostgreSQL server for the tests (issue 15): ``initdb`` into a temporary
folder, ``postgres`` (this process's child) listening on a Unix socket in that folder
and on a free loopback port, password authentication (SCRAM) for every connection,
removed afterwards.

PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster
belongs to an unprivileged user (``nobody``) and its programs run as that user.

Without the server programs the tests that need one skip with the reason on a
developer's machine and fail in CI (``CI`` set): CI must not pass without having run
them. ``.ci/run`` installs Debian's ``postgresql``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Dict, List, Optional
from urllib.parse import quote

SUPERUSER = "promptlab"
# Only for this throwaway cluster, which listens on loopback and a private socket.
PASSWORD = "throwaway-test-password"
UNPRIVILEGED_USER = "nobody"


def server_programs() -> Optional[str]:
    """The folder holding initdb, postgres and pg_isready (Debian keeps them out of
    PATH), or None."""
    for folder in [*sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
                   os.path.dirname(shutil.which("initdb") or "")]:
        if folder and all(os.access(os.path.join(folder, p), os.X_OK)
                          for p in ("initdb", "postgres", "pg_isready")):
            return folder
    return None


def missing_reason() -> Optional[str]:
    """Why no server can be started here, or None when one can."""
    if server_programs() is None:
        return ("PostgreSQL's server programs (initdb, postgres, pg_isready) were not "
                "found; install them (Debian: apt-get install postgresql) to run the "
                "PostgreSQL tests")
    if shutil.which("psql") is None:
        return "psql was not found; install Debian's postgresql-client"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster: ``init()``, ``start()``, ``url(...)``, ``psql(...)``, ``kill()`` then
    ``start()`` to restart it after a crash, ``remove()`` at the end."""

    def __init__(self) -> None:
        self.bin = server_programs()
        assert self.bin is not None, missing_reason()
        self.root = tempfile.mkdtemp(prefix="promptlab-pg-")
        self.data = os.path.join(self.root, "data")
        self.socket_dir = self.root
        self.log = os.path.join(self.root, "server.log")
        self.host = "127.0.0.1"
        self.port = _free_port()
        self._as_user: Optional[str] = None
        self._postmaster: Optional[subprocess.Popen] = None
        if os.geteuid() == 0:
            self._as_user = UNPRIVILEGED_USER
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o755)  # the socket's folder: reachable by the tests' user

    def _run(self, program: str, *args: str, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([os.path.join(self.bin or "", program), *args],
                              user=self._as_user, cwd=self.root, capture_output=True,
                              text=True, check=check, timeout=timeout,
                              env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"})

    def init(self) -> None:
        pwfile = os.path.join(self.root, "pwfile")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self._as_user is not None:
            entry = pwd.getpwnam(self._as_user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run("initdb", "-D", self.data, "-U", SUPERUSER, f"--pwfile={pwfile}",
                      "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
        finally:
            os.unlink(pwfile)

    def start(self) -> None:
        """Start the postmaster as this process's child (so that a killed one is reaped
        here, not left a zombie that looks alive to the next start), and wait until it
        accepts connections."""
        # fsync off: a killed server keeps what it wrote in the OS's cache, which is what
        # the crash tests kill; the machine itself never crashes under a test.
        args = [os.path.join(self.bin or "", "postgres"), "-D", self.data,
                "-k", self.socket_dir, "-h", self.host, "-p", str(self.port),
                "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"]
        with open(self.log, "ab") as log:
            self._postmaster = subprocess.Popen(
                args, user=self._as_user, cwd=self.root, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"})
        deadline = time.monotonic() + 60
        while True:
            ready = self._run("pg_isready", "-q", "-h", self.socket_dir, "-p", str(self.port),
                              check=False)
            if ready.returncode == 0:
                return
            if self._postmaster.poll() is not None or time.monotonic() > deadline:
                self.stop("immediate")
                raise RuntimeError(f"the PostgreSQL server did not start:\n{self.server_log()}")
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """Stop the postmaster: "smart" waits for clients, "fast" disconnects them,
        "immediate" exits without a checkpoint (crash recovery at the next start)."""
        proc = self._postmaster
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal({"smart": signal.SIGTERM, "fast": signal.SIGINT,
                          "immediate": signal.SIGQUIT}[mode])
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would; its backends notice and exit."""
        assert self._postmaster is not None
        self._postmaster.kill()
        self._postmaster.wait()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def server_log(self) -> str:
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def url(self, database: str = "postgres", user: str = SUPERUSER,
            password: Optional[str] = PASSWORD, via_socket: bool = False) -> str:
        """A ``postgresql://`` URL for ``database``: over loopback TCP, or over the Unix
        socket (``?host=/folder``)."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        if via_socket:
            return (f"postgresql://{auth}@/{quote(database, safe='')}"
                    f"?host={quote(self.socket_dir, safe='')}&port={self.port}")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def psql(self, sql: str, database: str = "postgres", password: Optional[str] = PASSWORD,
             via_socket: bool = False) -> subprocess.CompletedProcess:
        """Run ``sql`` with psql (the password through PGPASSWORD, never on the command
        line); the completed process, not checked."""
        env: Dict[str, str] = {"PATH": os.environ.get("PATH", ""), "PGCONNECT_TIMEOUT": "10"}
        if password is not None:
            env["PGPASSWORD"] = password
        target = self.url(database, password=None, via_socket=via_socket)
        args: List[str] = ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", target,
                           "-c", sql]
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL (TCP, with the password)."""
        done = self.psql(f'CREATE DATABASE "{name}"')
        assert done.returncode == 0, done.stderr
        return self.url(name)


def start_server() -> PostgresServer:
    server = PostgresServer()
    try:
        server.init()
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
