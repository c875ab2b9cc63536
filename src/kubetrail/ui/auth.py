"""Who may read the UI: bearer tokens or HTTP basic users from files, and a session cookie set by the login form.

A token file holds `TOKEN` or `TOKEN,NAME` lines; a users file holds `USER:PASSWORD` or `USER:sha256:HEXDIGEST`
lines (`#` starts a comment in both). Secrets are kept only as SHA-256 digests and compared in constant time.
Sessions live in memory (a restart logs everyone out) and expire after `SESSION_SECONDS`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubetrail.errors import KubetrailError

COOKIE = "kubetrail_ui"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000


class UIAuthError(KubetrailError):
    """An unusable token or users file: names the file and line."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, hint: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.hint = hint
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}" if where else message)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UIAuthError(
            f"cannot read: {error}", file=str(path), hint="check --ui-token-file/--ui-users-file"
        ) from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)]
    return [(number, line) for number, line in lines if line and not line.startswith("#")]


@dataclass
class UIAuth:
    """The configured secrets and the live sessions; `check` answers who a request is, or None."""

    tokens: Mapping[bytes, str] = field(default_factory=dict)
    users: Mapping[str, bytes] = field(default_factory=dict)
    _sessions: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, token_file: Path | None, users_file: Path | None) -> UIAuth:
        """Read the files (either may be None); raises UIAuthError naming the bad line."""
        tokens: dict[bytes, str] = {}
        users: dict[str, bytes] = {}
        if token_file is not None:
            for number, line in _lines(token_file):
                token, _, name = line.partition(",")
                if len(token.strip()) < 16:
                    raise UIAuthError(
                        "token shorter than 16 characters",
                        file=str(token_file),
                        line=number,
                        hint="openssl rand -hex 32",
                    )
                tokens[_digest(token.strip())] = name.strip() or f"token {number}"
            if not tokens:
                raise UIAuthError("no tokens", file=str(token_file), hint="one TOKEN or TOKEN,NAME per line")
        if users_file is not None:
            for number, line in _lines(users_file):
                user, separator, secret = line.partition(":")
                if not separator or not user or not secret:
                    raise UIAuthError("expected USER:PASSWORD", file=str(users_file), line=number)
                if secret.startswith("sha256:"):
                    try:
                        users[user] = binascii.unhexlify(secret[len("sha256:") :])
                    except binascii.Error:
                        raise UIAuthError("bad sha256 hex digest", file=str(users_file), line=number) from None
                else:
                    users[user] = _digest(secret)
            if not users:
                raise UIAuthError("no users", file=str(users_file), hint="one USER:PASSWORD per line")
        return cls(tokens, users)

    @property
    def challenge(self) -> str:
        """The WWW-Authenticate value for a 401."""
        return 'Bearer realm="kubetrail"' if self.tokens else 'Basic realm="kubetrail"'

    def token_identity(self, token: str) -> str | None:
        digest = _digest(token)
        found = None
        for known, name in self.tokens.items():
            if hmac.compare_digest(known, digest):
                found = name
        return found

    def user_identity(self, user: str, password: str) -> str | None:
        expected = self.users.get(user, b"\0" * 32)
        matches = hmac.compare_digest(expected, _digest(password))
        return user if matches and user in self.users else None

    def check(self, authorization: str | None, cookie: str | None) -> str | None:
        """The identity of a request's Authorization header (Bearer or Basic) or session cookie, else None."""
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and self.tokens:
                return self.token_identity(value.strip())
            if scheme.lower() == "basic" and self.users:
                try:
                    user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return None
                return self.user_identity(user, password)
            return None
        if cookie:
            with self._lock:
                session = self._sessions.get(cookie)
                if session is not None and session[1] > time.time():
                    return session[0]
                self._sessions.pop(cookie, None)
        return None

    def start_session(self, identity: str) -> str:
        """A new session id for the login form's cookie."""
        session = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                for key in [key for key, (_, expires) in self._sessions.items() if expires <= now]:
                    del self._sessions[key]
                if len(self._sessions) >= MAX_SESSIONS:
                    del self._sessions[next(iter(self._sessions))]
            self._sessions[session] = (identity, now + SESSION_SECONDS)
        return session

    def end_session(self, session: str) -> None:
        with self._lock:
            self._sessions.pop(session, None)
