"""Who may use the console, over plain HTTP: the one-time login link, the session cookie's attributes,
refusals without a session or without the page's CSRF token, the Host check, and no secret in any page."""

from __future__ import annotations

import base64
import re

import pytest
import requests
from console_fixtures import RECORD_SECRET, ConsoleCloud, console_cloud

__all__ = ["console_cloud"]  # the fixture, for the tests below

PAGES = [
    "/buckets",
    "/bucket?name=autotag-demo",
    "/object?bucket=autotag-demo&key=a.jpg",
    "/fragment/object?bucket=autotag-demo&key=a.jpg",
    "/fragment/listing?name=autotag-demo",
    "/invocations",
    "/invocation?seq=1",
    "/events/changes",
    "/events/invocations",
]


def _logged_in(console: ConsoleCloud) -> requests.Session:
    session = requests.Session()
    answer = session.get(console.login_link, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie, cookie
    return session


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


@pytest.fixture(scope="module")
def signed_session(console_cloud: ConsoleCloud) -> requests.Session:
    """The module's one session: the login link works once."""
    for page in PAGES + list(NEW_PAGES):  # first, before any sign-in: no session, refused
        answer = requests.get(console_cloud.address + page, timeout=30, allow_redirects=False)
        assert answer.status_code == 401, (page, answer.status_code)
        assert "sign in with the link" in answer.text
    return _logged_in(console_cloud)


def test_sessions_csrf_and_secrets(console_cloud: ConsoleCloud, signed_session: requests.Session) -> None:
    console = console_cloud
    for page in PAGES:  # no session: refused, the page not shown
        answer = requests.get(console.address + page, timeout=30, allow_redirects=False)
        assert answer.status_code == 401, (page, answer.status_code)
        assert "sign in with the link" in answer.text
    forged = requests.get(console.address + "/buckets", cookies={"autotag_console": "guess"}, timeout=30)
    assert forged.status_code == 401

    session = signed_session
    again = requests.get(console.login_link, timeout=30, allow_redirects=False)
    assert again.status_code == 403, "the login link works once"
    assert requests.get(console.address + "/login?token=wrong", timeout=30).status_code == 403

    console.bucket().put_object("access/a.jpg", b"x")
    page = session.get(f"{console.address}/object?bucket=autotag-demo&key=access/a.jpg", timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")
    csrf = _csrf(page.text)
    key = base64.urlsafe_b64encode(b"access/a.jpg").decode()
    action = console.address + "/object/tag-again"
    for form in ({"bucket": "autotag-demo", "key": key}, {"bucket": "autotag-demo", "key": key, "csrf": "x"}):
        refused = session.post(action, data=form, timeout=30, allow_redirects=False)
        assert refused.status_code == 403, form
        assert "CSRF" in refused.text
    # a POST without a session is refused before anything else, CSRF token or not
    stranger = requests.post(action, data={"bucket": "autotag-demo", "key": key, "csrf": csrf}, timeout=30)
    assert stranger.status_code == 401
    done = session.post(
        action, data={"bucket": "autotag-demo", "key": key, "csrf": csrf}, timeout=60, allow_redirects=False
    )
    assert done.status_code == 303, done.text
    shown = session.get(console.address + done.headers["Location"], timeout=30).text
    assert "Tag again: tag-on-upload ran" in shown, shown

    # what cannot be shown is one line, never a traceback
    missing = session.get(f"{console.address}/bucket?name=no-such-bucket", timeout=30)
    assert missing.status_code == 404 and "OSS answered NoSuchBucket" in missing.text
    assert "Traceback" not in missing.text
    absent = session.get(f"{console.address}/invocation?seq=999999", timeout=30)
    assert absent.status_code == 404 and "no such invocation" in absent.text

    # another Host (a DNS name pointed here by some site) is refused
    port = console.address.rsplit(":", 1)[1]
    other = session.get(console.address + "/buckets", headers={"Host": f"evil.example:{port}"}, timeout=30)
    assert other.status_code == 421

    # no secret in any page: not the record secret, the OSS admin token nor the access key secret
    admin_token = re.search(r"admin token: (\S+?)[;)]", console.cloud.banner[0])
    assert admin_token, console.cloud.banner[0]
    for path in ("/buckets", "/bucket?name=autotag-demo", "/invocations", "/invocation?seq=1"):
        text = session.get(console.address + path, timeout=30).text
        for secret in (RECORD_SECRET, admin_token[1], "local-secret-key"):
            assert secret not in text, (path, secret)
    assert RECORD_SECRET not in shown and "local-secret-key" not in shown


NEW_PAGES = ("/dead-letters", "/functions", "/function?name=tag-on-upload", "/rules", "/bulk")
ACTIONS = (
    ("/dead-letters/replay", {"all": "1"}),
    ("/invocation/replay", {"seq": "1"}),
    ("/function/invoke", {"name": "tag-on-upload", "event": "{}"}),
    ("/function/fire", {"name": "tag-expiry", "trigger": "nightly-expiry"}),
    ("/function/save", {"name": "tag-on-upload", "event_name": "x", "event": "{}"}),
    ("/clock", {"offset": "8d"}),
    ("/rules/try", {"rules": "{}"}),
    ("/bulk/cancel", {"flow": "oss-autotag-backfill-prefix", "execution": "x"}),
)


def test_every_page_needs_the_session_every_change_its_csrf_token_and_none_shows_a_secret(
    console_cloud: ConsoleCloud, signed_session: requests.Session
) -> None:
    console, session = console_cloud, signed_session
    for path, form in ACTIONS:
        assert requests.post(console.address + path, data=form, timeout=30).status_code == 401, path
        refused = session.post(console.address + path, data={**form, "csrf": "x"}, timeout=30)
        assert refused.status_code == 403 and "CSRF" in refused.text, path
    admin_token = re.search(r"admin token: (\S+?)[;)]", console.cloud.banner[0])
    assert admin_token
    for page in NEW_PAGES:
        text = session.get(console.address + page, timeout=60).text
        assert "Traceback" not in text, page
        for secret in (RECORD_SECRET, admin_token[1], "local-secret-key"):
            assert secret not in text, (page, secret)
    clock = session.get(console.address + "/function?name=tag-expiry", timeout=60).text
    assert "(offset 0s)" in clock or "(offset 0)" in clock, "a refused change changed nothing"
