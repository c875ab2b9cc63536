"""Pub/Sub push tokens: what Google signs is accepted, anything else is refused with 401 (or 403 for an account
that is not allowed). Tokens are signed with the tests' own RSA key; its JWKS stands in for Google's."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from kubetrail.sources.oidc import REFRESH_AT_MOST_EVERY, KeySet, OidcVerifier, TokenError
from tests.sources.servers import TokenIssuer

pytest.importorskip("jwt", reason="the gcp extra (PyJWT) is not installed")


AUDIENCE = "https://kubetrail.example.com/pubsub"
ACCOUNT = "kubetrail-push@demo-project.iam.gserviceaccount.com"
ISSUER = TokenIssuer()
STRANGER = TokenIssuer(kid=ISSUER.kid)  # another key under the same key id: a forged signature


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> OidcVerifier:
    jwks = ISSUER.write_jwks(tmp_path_factory.mktemp("keys") / "jwks.json")
    return OidcVerifier(KeySet(str(jwks)), [AUDIENCE, "https://other.example.com/pubsub"], service_accounts=[ACCOUNT])


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_token_google_would_sign_is_accepted(verifier: OidcVerifier) -> None:
    claims = verifier.verify(bearer(ISSUER.token(AUDIENCE, ACCOUNT)))
    assert (claims.email, claims.audience) == (ACCOUNT, AUDIENCE)
    assert verifier.verify(bearer(ISSUER.token(AUDIENCE, ACCOUNT.upper(), iss="accounts.google.com"))).email
    expired_within_leeway = ISSUER.token(AUDIENCE, ACCOUNT, exp=int(time.time()) - 10)
    assert verifier.verify(bearer(expired_within_leeway)).email == ACCOUNT


@pytest.mark.parametrize(
    ("authorization", "status", "words"),
    [
        (None, 401, "missing Authorization"),
        ("Basic dXNlcjpwYXNz", 401, "missing Authorization"),
        ("Bearer ", 401, "missing Authorization"),
        ("Bearer not-a-jwt", 401, "not a JWT"),
        (bearer(ISSUER.token(AUDIENCE, ACCOUNT, exp=int(time.time()) - 120)), 401, "expired"),
        (bearer(ISSUER.token("https://evil.example.com/pubsub", ACCOUNT)), 401, "audience"),
        (bearer(ISSUER.token(AUDIENCE, ACCOUNT, iss="https://evil.example.com")), 401, "not issued by Google"),
        (bearer(ISSUER.token(AUDIENCE, ACCOUNT, exp=None)), 401, "not valid"),
        (bearer(STRANGER.token(AUDIENCE, ACCOUNT)), 401, "signature"),
        (bearer(TokenIssuer().token(AUDIENCE, ACCOUNT)), 401, "unknown key"),
        (bearer(ISSUER.token(AUDIENCE, ACCOUNT, algorithm="HS256")), 401, "algorithm"),
        (bearer(ISSUER.token(AUDIENCE, "intruder@demo-project.iam.gserviceaccount.com")), 403, "may not push"),
        (bearer(ISSUER.token(AUDIENCE, ACCOUNT, email_verified=False)), 403, "may not push"),
    ],
)
def test_everything_else_is_refused(verifier: OidcVerifier, authorization: str | None, status: int, words: str) -> None:
    with pytest.raises(TokenError) as caught:
        verifier.verify(authorization)
    assert caught.value.status == status and words in caught.value.message
    secret = (authorization or "").partition(" ")[2]
    assert len(secret) < 10 or secret not in caught.value.message


def test_the_unsigned_algorithm_none_is_refused(verifier: OidcVerifier) -> None:
    import jwt

    token = jwt.encode(
        {"aud": AUDIENCE, "iss": "https://accounts.google.com", "email": ACCOUNT}, None, algorithm="none"
    )
    with pytest.raises(TokenError, match="algorithm"):
        verifier.verify(bearer(token))


def test_without_configured_accounts_any_google_signed_token_for_the_audience_passes(tmp_path: Path) -> None:
    verifier = OidcVerifier(KeySet(str(ISSUER.write_jwks(tmp_path / "jwks.json"))), [AUDIENCE])
    assert verifier.verify(bearer(ISSUER.token(AUDIENCE, "anyone@example.com"))).email == "anyone@example.com"


def test_a_jwks_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = ISSUER.write_jwks(tmp_path / "jwks.json")
    verifier = OidcVerifier(KeySet(str(path)), [AUDIENCE])
    rotated = TokenIssuer()
    with pytest.raises(TokenError, match="unknown key"):
        verifier.verify(bearer(rotated.token(AUDIENCE)))
    rotated.write_jwks(path, ISSUER)
    future = time.time() + 5
    os.utime(path, (future, future))
    assert verifier.verify(bearer(rotated.token(AUDIENCE))).audience == AUDIENCE


class FakeUrl:
    """Google's JWKS URL: serves a document, counts fetches, can fail."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        self.fail = False

    def __call__(self, url: str) -> tuple[bytes, float]:
        self.fetches += 1
        if self.fail:
            raise OSError("network is unreachable")
        return json.dumps(self.document).encode(), 300.0


def test_a_url_is_cached_and_fetched_again_for_a_new_key_at_most_once_a_minute() -> None:
    url = FakeUrl(ISSUER.jwks())
    now = [1000.0]
    keys = KeySet("https://www.googleapis.com/oauth2/v3/certs", fetch=url, clock=lambda: now[0])
    verifier = OidcVerifier(keys, [AUDIENCE])
    for _ in range(3):
        verifier.verify(bearer(ISSUER.token(AUDIENCE)))
    assert url.fetches == 1
    stranger = TokenIssuer()
    for _ in range(5):  # a flood of unknown key ids costs one fetch
        with pytest.raises(TokenError, match="unknown key"):
            verifier.verify(bearer(stranger.token(AUDIENCE)))
    assert url.fetches == 1  # the first fetch was just now
    now[0] += REFRESH_AT_MOST_EVERY + 1
    url.document = {"keys": [*ISSUER.jwks()["keys"], *stranger.jwks()["keys"]]}
    assert verifier.verify(bearer(stranger.token(AUDIENCE))).audience == AUDIENCE  # Google rotated its keys
    assert url.fetches == 2
    now[0] += 301  # expired per Cache-Control: fetched again, and an outage keeps the keys in hand
    url.fail = True
    assert verifier.verify(bearer(ISSUER.token(AUDIENCE))).audience == AUDIENCE


def test_keys_that_cannot_be_had_are_a_503_not_a_refusal() -> None:
    url = FakeUrl({})
    url.fail = True
    verifier = OidcVerifier(KeySet("https://keys.example.com", fetch=url), [AUDIENCE])
    with pytest.raises(TokenError) as caught:
        verifier.verify(bearer(ISSUER.token(AUDIENCE)))
    assert caught.value.status == 503 and "OSError" in caught.value.message
