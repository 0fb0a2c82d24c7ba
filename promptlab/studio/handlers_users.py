"""The admin's user management: list, create, deactivate and reactivate users,
change their role, reset their password."""

from __future__ import annotations

import logging
from typing import Any, Dict

from promptlab import _core
from promptlab.sqlite.models import User
from promptlab.studio.handlers_auth import AuthHandlers
from promptlab.studio.http import ApiError, Principal, Request, Response, iso, json_response
from promptlab.studio.validation import ROLES, USERNAME, new_password

log = logging.getLogger("promptlab.studio")


class UserHandlers(AuthHandlers):
    """The ``/api/users`` routes (admins only).

    Part of ``StudioApp`` (``promptlab.studio.app``).
    """

    def get_users(self, request: Request, who: Principal) -> Dict[str, Any]:
        """The active users (the original's answer); with ``?all=1`` the deactivated
        ones too, each with ``active``."""
        every = (request.param("all") or "").lower() in ("1", "true", "yes")
        users = self.tracer.get_all_users() if every else self.tracer.get_users()
        out = []
        for u in users:
            item = {"id": u.id, "username": u.username, "role": u.role,
                    "created_at": iso(u.created_at)}
            if every:  # the original's answer keeps its four keys
                item["active"] = u.status == 1
            out.append(item)
        return {"users": out}

    def reactivate_user(self, request: Request, who: Principal, username: str) -> Response:
        user = self._existing(username)
        if user.status != 1:
            self.tracer.reactivate_user_by_username(username)
            log.info("%s reactivated user %r", who.username, username)
        return json_response({"success": True, "user": {
            "id": user.id, "username": username, "role": user.role, "active": True}})

    def set_user_role(self, request: Request, who: Principal, username: str) -> Response:
        role = request.json_object().get("role")
        if role not in ROLES:
            raise ApiError(400, f"Invalid input: role must be one of {', '.join(ROLES)}")
        user = self._existing(username)
        if username == who.username and role != user.role:
            raise ApiError(400, "Cannot change your own role; another admin can")
        self.tracer.set_user_role(username, role)
        log.info("%s set the role of %r to %s", who.username, username, role)
        return json_response({"success": True, "user": {
            "id": user.id, "username": username, "role": role, "active": user.status == 1}})

    def reset_password(self, request: Request, who: Principal, username: str) -> Response:
        """An admin sets another user's password; their tokens stop working."""
        password = new_password(request.json_object())
        self._existing(username)
        if username == who.username:
            raise ApiError(400, "Change your own password with POST /api/me/password "
                                "(it asks for the current one)")
        self.tracer.set_user_password_hash(username, _core.hash_password(password))
        log.info("%s reset the password of %r", who.username, username)
        return json_response({"success": True})

    def post_user(self, request: Request, who: Principal) -> Response:
        data = request.json_object()
        username, role = data.get("username"), data.get("role")
        if not isinstance(username, str) or not USERNAME.fullmatch(username):
            raise ApiError(400, "Invalid input: username must be 1-64 letters, digits or "
                                "._@+- and start with a letter or digit")
        password = new_password(data)
        if role not in ROLES:
            raise ApiError(400, f"Invalid input: role must be one of {', '.join(ROLES)}")
        existing = self._user(username)
        if existing is not None and existing.status != 1:
            raise ApiError(409, f"User {username} already exists (deactivated): reactivate "
                                f"them instead (Users page, or POST /api/users/{username}"
                                "/reactivate); a name is never reused for another person")
        if existing is not None:
            raise ApiError(409, f"User {username} already exists")
        user = User(username=username, password_hash=_core.hash_password(password), role=role)
        try:
            self.tracer.create_user(user)
        except _core.IntegrityError:
            raise ApiError(409, f"User {username} already exists") from None
        log.info("%s created user %r (%s)", who.username, username, role)
        return json_response({"success": True, "user": {
            "id": user.id, "username": username, "role": role}})

    def delete_user(self, request: Request, who: Principal, username: str) -> Response:
        if username == who.username:
            raise ApiError(400, "Cannot delete yourself")
        try:
            self.tracer.deactivate_user_by_username(username)
        except ValueError:
            raise ApiError(404, f"User {username} not found") from None
        log.info("%s deactivated user %r", who.username, username)
        return json_response({"success": True})
