"""Google-signed OIDC tokens, as a Pub/Sub push subscription sends them: `Authorization: Bearer <JWT>`.

Pub/Sub signs a token for the subscription's service account with Google's keys (RS256, published as a JWKS at
GOOGLE_JWKS_URL); its claims are `iss` (accounts.google.com, with or without https://), `aud` (the
subscription's audience, by default the push endpoint's URL), `exp`/`iat`, and `email` + `email_verified` (the
service account). A token is accepted only when its signature verifies against the configured keys, the
issuer is Google's, the audience is one configured, it has not expired (30 s of clock skew allowed) and, when
service accounts are configured, its verified email is one of them.

The keys come from a JWKS file (re-read when it changes) or an https URL (cached as its Cache-Control allows,
fetched again when a token names a key not seen yet, at most once a minute). PyJWT does the cryptography
(the `gcp` extra). Tokens are never logged or echoed.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
ALGORITHMS = ("RS256",)
LEEWAY_SECONDS = 30.0
REFRESH_AT_MOST_EVERY = 60.0
"""A URL's keys are fetched again for an unknown key id at most this often (a flood of forged ids costs one)."""
DEFAULT_MAX_AGE = 3600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


class TokenError(Exception):
    """A request whose token is refused: 401 (none, or not valid) or 403 (valid, but not an allowed account);
    503 when the keys could not be had (the sender retries)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its sender."""

    email: str
    subject: str
    audience: str


def fetch_url(url: str) -> tuple[bytes, float]:
    """GET a JWKS URL: its body and how long it may be cached (Cache-Control max-age, else an hour)."""
    import httpx

    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()
    found = _MAX_AGE.search(response.headers.get("cache-control", ""))
    return response.content, float(found[1]) if found else DEFAULT_MAX_AGE


class KeySet:
    """The public keys tokens are checked against, by key id, from a JWKS file or an https URL."""

    def __init__(
        self,
        location: str,
        *,
        fetch: Callable[[str], tuple[bytes, float]] = fetch_url,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.is_url = location.startswith(("https://", "http://"))
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._expires = 0.0
        self._fetched = -REFRESH_AT_MOST_EVERY
        self._mtime: float | None = None

    def _parse(self, data: bytes) -> dict[str, Any]:
        import jwt

        try:
            document = msgspec.json.decode(data)
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (msgspec.DecodeError, jwt.PyJWKSetError, jwt.InvalidKeyError, AttributeError, TypeError) as error:
            raise TokenError(503, f"the keys at {self.location} are not a JWKS document: {error}") from None
        return {str(key.key_id): key for key in keys if key.key_id}

    def _load_file(self) -> None:
        path = Path(self.location)
        try:
            mtime = path.stat().st_mtime
            if mtime != self._mtime:
                self._keys, self._mtime = self._parse(path.read_bytes()), mtime
        except OSError as error:
            raise TokenError(503, f"cannot read the keys file {self.location}: {error.strerror}") from None

    def _load_url(self, force: bool) -> None:
        now = self._clock()
        if not force and now < self._expires:
            return
        if force and now - self._fetched < REFRESH_AT_MOST_EVERY:
            return
        self._fetched = now
        try:
            data, max_age = self._fetch(self.location)
        except Exception as error:
            if self._keys:
                return  # keep the keys in hand; try again next time
            raise TokenError(503, f"cannot fetch the keys from {self.location}: {type(error).__name__}") from None
        self._keys = self._parse(data)
        self._expires = now + max_age

    def key(self, key_id: str) -> Any:
        """The key (a PyJWK) of this id; TokenError 401 when no configured key has it."""
        with self._lock:
            if self.is_url:
                self._load_url(force=False)
                if key_id not in self._keys:
                    self._load_url(force=True)
            else:
                self._load_file()
            found = self._keys.get(key_id)
        if found is None:
            raise TokenError(401, "the token is signed by an unknown key")
        return found


class OidcVerifier:
    """Checks a push request's `Authorization` header; see the module's docstring for what is required."""

    def __init__(
        self,
        keys: KeySet,
        audiences: Sequence[str],
        *,
        service_accounts: Sequence[str] = (),
        issuers: Sequence[str] = GOOGLE_ISSUERS,
        leeway: float = LEEWAY_SECONDS,
    ) -> None:
        self.keys = keys
        self.audiences = tuple(audiences)
        self.service_accounts = frozenset(account.lower() for account in service_accounts)
        self.issuers = tuple(issuers)
        self.leeway = leeway

    def verify(self, authorization: str | None) -> Claims:
        """The token's claims, or TokenError (may fetch keys: call it off the event loop)."""
        import jwt

        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenError(401, "missing Authorization: Bearer token (set the subscription's push authentication)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError(401, "the bearer token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenError(401, f"the token's algorithm is not one of {', '.join(ALGORITHMS)}")
        key = self.keys.key(str(header.get("kid") or ""))
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=list(self.audiences),
                issuer=self.issuers,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(401, "the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError(401, "the token's audience is not one this endpoint accepts") from None
        except jwt.InvalidIssuerError:
            raise TokenError(401, "the token is not issued by Google (accounts.google.com)") from None
        except jwt.InvalidSignatureError:
            raise TokenError(401, "the token's signature does not verify") from None
        except jwt.PyJWTError as error:
            raise TokenError(401, f"the token is not valid: {type(error).__name__}") from None
        email = str(claims.get("email") or "")
        if self.service_accounts and (
            email.lower() not in self.service_accounts or claims.get("email_verified") is not True
        ):
            raise TokenError(403, "the token's service account may not push here")
        audience = claims.get("aud")
        return Claims(email=email, subject=str(claims.get("sub") or ""), audience=str(audience))
