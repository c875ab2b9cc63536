"""UI authentication: the token and users files, and a real `serve` that refuses readers without credentials."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kubetrail.ui.auth import COOKIE, UIAuth, UIAuthError
from tests.serve.helpers import PROJECT, ServeProcess, start_serve

TOKEN = "3f9c1d2e4b5a69788796a5b4c3d2e1f0"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def secrets_files(tmp_path: Path) -> tuple[Path, Path]:
    tokens = tmp_path / "ui-tokens"
    tokens.write_text(f"# readers\n{TOKEN},oncall\n")
    users = tmp_path / "ui-users"
    digest = hashlib.sha256(b"s3cret pass").hexdigest()
    users.write_text(f"alice:wonderland\nbob:sha256:{digest}\n")
    return tokens, users


def test_files_are_read_and_secrets_checked(secrets_files: tuple[Path, Path]) -> None:
    auth = UIAuth.load(*secrets_files)
    assert auth.check(f"Bearer {TOKEN}", None) == "oncall"
    assert auth.check(f"Bearer {TOKEN}x", None) is None
    assert auth.check(basic("alice", "wonderland"), None) == "alice"
    assert auth.check(basic("bob", "s3cret pass"), None) == "bob"
    assert auth.check(basic("bob", "wonderland"), None) is None
    assert auth.check(basic("carol", ""), None) is None
    assert auth.check("Basic !!!", None) is None
    assert auth.check(None, None) is None
    session = auth.start_session("alice")
    assert auth.check(None, session) == "alice"
    auth.end_session(session)
    assert auth.check(None, session) is None


def test_a_short_token_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# comment\n\nshort\n")
    with pytest.raises(UIAuthError) as caught:
        UIAuth.load(path, None)
    assert caught.value.line == 3 and "16" in caught.value.message


def test_a_users_line_without_a_password_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("alice\n")
    with pytest.raises(UIAuthError) as caught:
        UIAuth.load(None, path)
    assert caught.value.line == 1


@pytest.fixture
def guarded(tmp_path: Path, secrets_files: tuple[Path, Path]) -> Iterator[ServeProcess]:
    tokens, users = secrets_files
    process = start_serve(
        "--store", str(tmp_path / "store"), "--listen", "127.0.0.1:0",
        "--ui-token-file", str(tokens), "--ui-users-file", str(users),
    )  # fmt: skip
    try:
        yield process
    finally:
        process.stop()


def test_serve_refuses_readers_without_credentials(guarded: ServeProcess) -> None:
    with httpx.Client(base_url=guarded.url, timeout=10) as client:
        refused = client.get("/ui/search", params={"q": "verb=get"})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert 'name="token"' in refused.text and "table" not in refused.text
        assert client.get("/ui/", headers={"authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert client.get("/ui/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/ui/", headers={"authorization": basic("alice", "wonderland")}).status_code == 200
        assert client.get("/ui/", headers={"authorization": basic("alice", "nope")}).status_code == 401
        assert client.get("/ui/static/ui.css").status_code == 200
        assert client.get("/healthz").status_code == 200


def test_the_login_form_sets_a_strict_http_only_cookie(guarded: ServeProcess) -> None:
    with httpx.Client(base_url=guarded.url, timeout=10) as client:
        wrong = client.post("/ui/login", data={"token": "not-the-token-at-all"})
        assert wrong.status_code == 401 and COOKIE not in client.cookies
        answer = client.post("/ui/login", data={"token": TOKEN, "next": "https://elsewhere.example/"})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
        assert client.get("/ui/search").status_code == 200
        client.get("/ui/logout")
        assert client.get("/ui/search").status_code == 401


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_huge_login_body_is_refused_without_holding_it(guarded: ServeProcess) -> None:
    """Unauthenticated, so it must cost the server nothing: 200 MiB streamed in is refused at 4 KiB."""
    before = _rss_kib(guarded.process.pid)
    chunk = b"token=" + b"x" * (1 << 20)

    def body() -> Iterator[bytes]:
        for _ in range(200):
            yield chunk

    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        try:
            answer = client.post(
                "/ui/login", content=body(), headers={"content-type": "application/x-www-form-urlencoded"}
            )
            assert answer.status_code == 413
        except httpx.WriteError:
            pass  # the server answered and closed before the client finished sending: just as good
        assert client.get("/healthz").status_code == 200
    assert _rss_kib(guarded.process.pid) - before < 50 * 1024


def test_serve_will_not_expose_an_open_ui_beyond_loopback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kubetrail.cli.main", "serve", "--store", str(tmp_path / "s"), "--listen", "0.0.0.0:0"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--ui-token-file" in done.stderr + done.stdout
    assert not (tmp_path / "s").exists()
