"""Authentication for the studio: HS256 JSON Web Tokens, the signing secret, and the
slow-down of repeated failed logins.

Tokens are standard compact JWS (RFC 7515/7519): ``header.payload.signature``, each
part base64url without padding, signed with HMAC-SHA256. The claims are those the
original studio (python-jose) wrote: ``sub`` (username), ``role`` and ``exp`` (seconds
since the epoch), plus ``iat``. A token written by python-jose with the same secret is
accepted here, and the reverse.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

log = logging.getLogger("promptlab.studio")

ALGORITHM = "HS256"
SECRET_ENV = "PROMPTLAB_SECRET_KEY"
SECRET_SUFFIX = ".studio-secret"
"""Where studios before issue 17 kept the generated secret: ``<database
file>.studio-secret`` (mode 0600). Still read when present, never created."""
MIN_SECRET_LENGTH = 32

_B64URL = re.compile(r"[A-Za-z0-9_-]*")  # fullmatch: "$" would let a final "\n" in


class StudioError(Exception):
    """A studio setup problem (secret file, address): one line for the user."""


class TokenError(Exception):
    """The token is malformed, badly signed or expired."""


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TokenError("Invalid token encoding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("Invalid token encoding") from None


def _sign(signing_input: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


def encode_token(claims: Mapping[str, Any], secret: bytes) -> str:
    """The HS256 JWT for ``claims`` signed with ``secret``."""
    header = {"alg": ALGORITHM, "typ": "JWT"}
    parts = [_b64url_encode(json.dumps(part, separators=(",", ":")).encode("utf-8"))
             for part in (header, dict(claims))]
    signing_input = ".".join(parts).encode("ascii")
    return ".".join(parts + [_b64url_encode(_sign(signing_input, secret))])


def decode_token(token: str, secret: bytes, now: Optional[float] = None,
                 leeway: float = 0.0) -> Dict[str, Any]:
    """The claims of a valid HS256 token; TokenError otherwise.

    The header must name HS256 (``none`` and every other algorithm are refused),
    the signature must match, and ``exp`` must be present, numeric and in the future.
    ``nbf``, when present, must be in the past.
    """
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
        raise TokenError("Invalid token")
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        header = json.loads(_b64url_decode(header_b64))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("Invalid token header") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise TokenError("Invalid token algorithm")
    expected = _sign(f"{header_b64}.{payload_b64}".encode("ascii"), secret)
    if not hmac.compare_digest(expected, _b64url_decode(signature_b64)):
        raise TokenError("Invalid token signature")
    try:
        claims = json.loads(_b64url_decode(payload_b64))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("Invalid token payload") from None
    if not isinstance(claims, dict):
        raise TokenError("Invalid token payload")
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise TokenError("Token has no expiry")
    if now >= exp + leeway:
        raise TokenError("Token expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and now + leeway < nbf:
        raise TokenError("Token not yet valid")
    return claims


def password_version(password_hash: Optional[str], secret: bytes) -> str:
    """The ``pwv`` claim: a short MAC of the user's current password hash. Changing
    the password (``db admin-password``, a new hash) changes it, which signs out every
    token issued before; keyed with the secret, it tells a token's reader nothing."""
    mac = hmac.new(secret, b"pwv\0" + (password_hash or "").encode("utf-8"), hashlib.sha256)
    return _b64url_encode(mac.digest()[:12])


def issue_token(username: str, role: str, secret: bytes, ttl_seconds: float,
                now: Optional[float] = None, password_hash: Optional[str] = None
                ) -> Tuple[str, int]:
    """A token for ``username`` with ``role``, and its expiry (epoch seconds)."""
    now = int(time.time() if now is None else now)
    exp = now + int(ttl_seconds)
    claims = {"sub": username, "role": role, "iat": now, "exp": exp,
              "pwv": password_version(password_hash, secret)}
    return encode_token(claims, secret), exp


# --- the signing secret -----------------------------------------------------


def secret_path(db_file: str) -> str:
    """The older place of ``db_file``'s secret, next to it (read when present)."""
    return os.fspath(db_file) + SECRET_SUFFIX


def config_dir(environ: Optional[Mapping[str, str]] = None) -> str:
    """The per-user folder of PromptLab's settings: ``$XDG_CONFIG_HOME/promptlab``,
    else ``~/.config/promptlab``."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or ""
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "promptlab")


def config_secret_path(db_file: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """Where the generated secret of ``db_file`` is kept: in the per-user config
    folder, out of the working tree, one file per database keyed by a hash of the
    database's absolute path."""
    key = hashlib.sha256(os.path.abspath(os.fspath(db_file)).encode("utf-8",
                                                                    "surrogateescape"))
    return os.path.join(config_dir(environ), "studio-secrets", key.hexdigest()[:32] + ".secret")


def _private_dir(path: str) -> None:
    """Make ``path`` (and its parents) with mode 0700; the last one must be ours and
    closed to others."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        for folder in (path, os.path.dirname(path)):
            st = os.stat(folder)
            if st.st_uid == os.geteuid() and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                os.chmod(folder, 0o700)
    except OSError as exc:
        raise StudioError(f"{path}: cannot create the folder of the studio secret "
                          f"({exc.strerror}); set {SECRET_ENV} instead.") from None


def load_secret(db_file: str, environ: Optional[Mapping[str, str]] = None
                ) -> Tuple[bytes, str]:
    """The signing secret and where it came from (``"environment"`` or the file path).

    ``PROMPTLAB_SECRET_KEY`` wins when set. Otherwise a secret kept next to the
    database by an older studio (``secret_path``) is read, so that its tokens keep
    working; else the one in the per-user config folder (``config_secret_path``,
    folders 0700), generated once (32 random bytes, written 0600 to a temporary file
    and linked into place, so that two studios starting at once agree on one).
    Raises StudioError when the file cannot be read or written.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(SECRET_ENV)
    if value:
        if len(value) < MIN_SECRET_LENGTH:
            log.warning("%s is shorter than %d characters; use a longer random value.",
                        SECRET_ENV, MIN_SECRET_LENGTH)
        return value.encode("utf-8"), "environment"
    try:
        return _read_secret(secret_path(db_file)), secret_path(db_file)
    except FileNotFoundError:
        pass
    path = config_secret_path(db_file, environ)
    _private_dir(os.path.dirname(path))
    for _ in range(50):
        try:
            return _read_secret(path), path
        except FileNotFoundError:
            pass
        _create_secret(path)
    raise StudioError(f"{path}: the studio secret could not be created; "
                      f"set {SECRET_ENV} instead.")


def _read_secret(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            mode, owner = st.st_mode, st.st_uid
            value = handle.read(4096).strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StudioError(f"{path}: cannot read the studio secret ({exc.strerror}); fix its "
                          f"permissions or set {SECRET_ENV}.") from None
    if not stat.S_ISREG(mode):
        raise StudioError(f"{path}: the studio secret is not a regular file.")
    # Whoever can write (or plant) the secret can sign any token: refuse it, not warn.
    if owner != os.geteuid():
        raise StudioError(f"{path}: the studio secret belongs to another user (uid {owner}); "
                          f"delete it (a new one is generated) or set {SECRET_ENV}.")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StudioError(f"{path}: the studio secret can be read or written by other users; "
                          f"run: chmod 600 {path} (or delete it, or set {SECRET_ENV}).")
    if len(value) < MIN_SECRET_LENGTH:
        raise StudioError(f"{path}: the studio secret is too short or empty; delete the "
                          f"file to generate a new one (signed-in users sign in again).")
    return value


def _create_secret(path: str) -> None:
    """Write a new secret to ``path`` unless another process did first."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}."
                                  f"{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_urlsafe(32).encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic; fails if another process got there first
        except FileExistsError:
            pass
    except OSError as exc:
        raise StudioError(f"{path}: cannot create the studio secret ({exc.strerror}); "
                          f"set {SECRET_ENV} or make the folder writable.") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# --- failed logins ----------------------------------------------------------


@dataclass
class _Entry:
    attempts: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Slows down repeated failed logins so that an attacker slows only their own
    attempts.

    Three counters, each checked before the password (so parallel guesses count too):

    - ``user``: one account from one client address (``free_per_user`` attempts);
      the one a mistyping user or a guesser of one password meets first.
    - ``account``: one account from anywhere (``free_per_account``): a guesser
      spread over many addresses. Only that account waits; it is "under attack".
      A success (the owner) clears this and the one above.
    - ``address``: one client address, whatever the names (``free_per_address``):
      password spraying. Not counted for a *shared* address (loopback, a proxy that
      named no client), which stands for everyone behind it: failures with random
      names from there must not lock out the real accounts. A success never clears
      it, so signing in to one's own account does not buy more guesses at others.

    After the free attempts a key must wait ``base_delay`` seconds, doubling with
    each further attempt up to ``max_delay``. A key idle for ``forget_after`` seconds
    starts over. While any key of an attempt waits, the login is answered 429.
    """

    def __init__(self, free_per_user: int = 5, free_per_address: int = 20,
                 base_delay: float = 1.0, max_delay: float = 300.0,
                 forget_after: float = 900.0, max_entries: int = 10000,
                 clock: Callable[[], float] = time.monotonic,
                 free_per_account: int = 20) -> None:
        self.free = {"user": free_per_user, "account": free_per_account,
                     "address": free_per_address}
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_entries = max_entries
        self.clock = clock
        self._entries: Dict[Tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(username: str, address: str, shared: bool = False
             ) -> Tuple[Tuple[str, str], ...]:
        name = username.casefold()
        keys = (("user", f"{name}\0{address}"), ("account", name))
        return keys if shared else keys + (("address", address),)

    def attempt(self, keys: Iterable[Tuple[str, str]]) -> float:
        """Count an attempt; returns 0 when it may proceed, else the seconds to wait."""
        keys = tuple(keys)
        with self._lock:
            now = self.clock()
            wait = 0.0
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and now - entry.last > self.forget_after:
                    entry = None
                    del self._entries[key]
                if entry is not None and entry.blocked_until > now:
                    wait = max(wait, entry.blocked_until - now)
            if wait:
                return wait
            for kind_key in keys:
                entry = self._entries.get(kind_key)
                if entry is None:
                    self._evict(now)
                    entry = self._entries[kind_key] = _Entry()
                entry.attempts += 1
                entry.last = now
                over = entry.attempts - self.free[kind_key[0]]
                if over >= 0:
                    delay = min(self.max_delay, self.base_delay * 2 ** min(over, 30))
                    entry.blocked_until = now + delay
            return 0.0

    def success(self, keys: Iterable[Tuple[str, str]]) -> None:
        """After a successful login: forget the account's counters; the address's
        stays (see the class)."""
        with self._lock:
            for key in keys:
                if key[0] != "address":
                    self._entries.pop(key, None)

    def _evict(self, now: float) -> None:
        if len(self._entries) < self.max_entries:
            return
        for key in [k for k, e in self._entries.items() if now - e.last > self.forget_after]:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:  # still full: drop the oldest
            oldest = min(self._entries, key=lambda k: self._entries[k].last)
            del self._entries[oldest]
