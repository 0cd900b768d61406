"""Who may use the console: the one-time login link, sessions and CSRF tokens.

`autotag local up` prints a link carrying a login token. Opening it once makes a session: a random id in
a cookie the page's scripts cannot read (HttpOnly) and the browser sends only from the console's own pages
(SameSite=Strict). The token is spent then; another link needs another `local up`. Every page needs a
session, and every change (a POST) also the session's CSRF token, which the pages put in their forms.
Tokens are compared in constant time."""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass, field

COOKIE = "autotag_console"


@dataclass
class Session:
    csrf: str
    flash: list[str] = field(default_factory=list)  # one-shot notices for the next page (Tag again's)


class Access:
    def __init__(self, login_token: str | None = None) -> None:
        self.login_token = login_token or secrets.token_urlsafe(32)
        self._spent = False
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def log_in(self, token: str) -> str | None:
        """A new session id for the login token, once; None for any other token or a second use."""
        with self._lock:
            if self._spent or not hmac.compare_digest(token.encode(), self.login_token.encode()):
                return None
            self._spent = True
            session_id = secrets.token_urlsafe(32)
            self._sessions[session_id] = Session(csrf=secrets.token_urlsafe(32))
            return session_id

    def session(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            for known, session in self._sessions.items():
                if hmac.compare_digest(known.encode(), session_id.encode()):
                    return session
        return None

    @staticmethod
    def csrf_holds(session: Session, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(session.csrf.encode(), given.encode())


def cookie_header(session_id: str) -> str:
    return f"{COOKIE}={session_id}; HttpOnly; SameSite=Strict; Path=/"


def cookie_value(header: str | None) -> str | None:
    """The session id in a Cookie header, if any."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None
