"""Who is asking: bearer tokens checked against the database, login, the signed-in
user's own password and tokens."""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Dict, Literal, Optional, overload

from promptlab import _core
from promptlab.sqlite.models import User
from promptlab.studio.auth import TokenError, decode_token, issue_token, password_version
from promptlab.studio.config import DEFAULT_TOKEN_MINUTES
from promptlab.studio.http import (
    ApiError,
    Principal,
    Request,
    Response,
    error_response,
    json_response,
)
from promptlab.studio.state import StudioState
from promptlab.studio.validation import new_password

log = logging.getLogger("promptlab.studio")

MAX_TOKEN_MINUTES = 366 * 24 * 60


class AuthHandlers(StudioState):
    """Authentication and the routes about the signed-in user.

    Part of ``StudioApp`` (``promptlab.studio.app``).
    """

    @overload
    def authenticate(self, request: Request, optional: Literal[False] = False) -> Principal: ...

    @overload
    def authenticate(self, request: Request, optional: bool) -> Optional[Principal]: ...

    def authenticate(self, request: Request, optional: bool = False) -> Optional[Principal]:
        """The user a bearer token names, still active, with the role the database holds
        now, whose password has not changed since the token was issued; ApiError 401
        otherwise (None when ``optional`` and there is no valid token)."""
        scheme, _, token = request.header("Authorization").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            if optional:
                return None
            raise ApiError(401, "Not authenticated", [("WWW-Authenticate", "Bearer")])
        try:
            claims = decode_token(token.strip(), self.secret)
        except TokenError as exc:
            if optional:
                return None
            reason = str(exc)  # "Invalid token", "Invalid token signature", "Token expired"
            message = reason if reason.lower().startswith("invalid token") else \
                f"Invalid token: {reason[:1].lower()}{reason[1:]}"
            raise ApiError(401, message,
                           [("WWW-Authenticate", 'Bearer error="invalid_token"')]) from None
        username = claims.get("sub")
        user = self._user(username) if isinstance(username, str) else None
        if user is None or user.status != 1:
            problem = "the user does not exist or was deactivated"
        elif claims.get("pwv") != password_version(user.password_hash, self.secret):
            problem = "the password changed since it was issued; sign in again"
        else:
            return Principal(user.username, user.role)
        if optional:
            return None
        raise ApiError(401, f"Invalid token: {problem}",
                       [("WWW-Authenticate", 'Bearer error="invalid_token"')])

    def _user(self, username: str) -> Optional[User]:
        try:
            return self.tracer.get_user_by_username(username)
        except ValueError:
            return None

    def _existing(self, username: str) -> User:
        user = self._user(username)
        if user is None:
            raise ApiError(404, f"User {username} not found")
        return user

    def login(self, request: Request, _: None) -> Response:
        data = request.json_object()
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            raise ApiError(400, "username and password are required strings")
        if len(username) > 256 or len(password) > 1024:
            raise ApiError(400, "username or password too long")
        if "\0" in username or "\0" in password:
            raise ApiError(400, "username and password must not hold a NUL character")
        keys = self.throttle.keys(username, request.client, request.shared)
        wait = self.throttle.attempt(keys)
        if wait:
            seconds = max(1, math.ceil(wait))
            log.warning("login for %r from %s refused: too many attempts", username,
                        request.client)
            return error_response(429, f"Too many failed logins; try again in {seconds} s.",
                                  [("Retry-After", str(seconds))])
        user = self._user(username)
        if user is not None and user.status == 1:
            ok = _core.verify_password(password, user.password_hash)
        else:  # spend the same time, so the answer does not tell which users exist
            _core.verify_password(password, self._dummy())
            ok = False
        if user is None or not ok:  # ok is False whenever user is None
            log.info("failed login for %r from %s", username, request.client)
            return json_response({"success": False, "message": "Invalid credentials"}, 401)
        self.throttle.success(keys)
        token, expires = issue_token(user.username, user.role, self.secret,
                                     self.config.token_ttl_seconds,
                                     password_hash=user.password_hash)
        return json_response({"success": True, "access_token": token, "token_type": "bearer",
                              "username": user.username, "role": user.role,
                              "expires_at": expires})

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = _core.hash_password(os.urandom(16).hex())
        return self._dummy_hash

    def me(self, request: Request, who: Principal) -> Dict[str, Any]:
        return {"username": who.username, "role": who.role}

    def change_own_password(self, request: Request, who: Principal) -> Response:
        """The signed-in user's new password, given the current one. Older tokens stop
        working; the answer carries a new token."""
        data = request.json_object()
        current = data.get("current_password")
        if not isinstance(current, str) or not current or len(current) > 1024:
            raise ApiError(400, "current_password is required")
        password = new_password(data, "new_password")
        user = self._existing(who.username)
        if not _core.verify_password(current, user.password_hash):
            raise ApiError(403, "The current password is wrong")
        hashed = _core.hash_password(password)
        self.tracer.set_user_password_hash(who.username, hashed)
        log.info("%s changed their password", who.username)
        token, expires = issue_token(user.username, user.role, self.secret,
                                     self.config.token_ttl_seconds, password_hash=hashed)
        return json_response({"success": True, "access_token": token, "token_type": "bearer",
                              "expires_at": expires})

    def new_token(self, request: Request, who: Principal) -> Response:
        """A token for the signed-in user with a chosen lifetime (``minutes``, up to a
        year), e.g. for a remote tracer's ``jwt_token``."""
        data = request.json_object()
        minutes = data.get("minutes", DEFAULT_TOKEN_MINUTES)
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) \
                or not math.isfinite(minutes) or not 1 <= minutes <= MAX_TOKEN_MINUTES:
            raise ApiError(400, f"minutes must be a number from 1 to {MAX_TOKEN_MINUTES}")
        user = self._existing(who.username)
        token, expires = issue_token(user.username, user.role, self.secret, minutes * 60,
                                     password_hash=user.password_hash)
        log.info("%s made a token for %s minutes", who.username, minutes)
        return json_response({"success": True, "access_token": token, "token_type": "bearer",
                              "username": user.username, "expires_at": expires})
