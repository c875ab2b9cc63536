"""Alerts POSTed as JSON, one request per alert (Falco's JSON alert by default), with retries and backoff.

Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff (honouring a short
`Retry-After`); other 4xx answers are not (the request itself is wrong). The URL can hold a secret (Slack's
do), so logs and errors name only its host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

import httpx

from kubetrail.alert.outputs.base import OutputError
from kubetrail.detect.alert import Alert

Encoder = Callable[[Alert], bytes]
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _quiet_http_logs() -> None:
    """httpx logs every request's full URL at INFO; a webhook URL can be a credential, so keep those quiet."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


def falco_payload(alert: Alert) -> bytes:
    return alert.to_falco_json()


def safe_url(url: str) -> str:
    """The scheme and host of a URL, never its path, query or credentials (which may be secret)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class WebhookOutput:
    """POST each alert to `url`; `retries` more attempts after the first, waiting backoff·2ⁿ (capped)."""

    def __init__(
        self,
        url: str,
        *,
        encode: Encoder = falco_payload,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        verify: bool | str = True,
        name: str = "webhook",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise OutputError("the url must start with http:// or https://", output=name)
        _quiet_http_logs()
        self.name = name
        self.url = url
        self.encode = encode
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.attempts = 0
        self._sleep = sleep
        self._client = httpx.Client(
            timeout=timeout,
            verify=verify,
            headers={"content-type": "application/json", "user-agent": "kubetrail", **(headers or {})},
        )

    def send(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self._post(self.encode(alert))

    def _post(self, body: bytes) -> None:
        problem = ""
        asked = 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(min(max(self.backoff * 2 ** (attempt - 1), asked), self.max_backoff))
            self.attempts += 1
            try:
                response = self._client.post(self.url, content=body)
            except httpx.HTTPError as error:
                problem, asked = f"{type(error).__name__} from {safe_url(self.url)}", 0.0
                continue
            if response.status_code < 300:
                return
            problem = f"HTTP {response.status_code} from {safe_url(self.url)}"
            if response.status_code not in RETRY_STATUSES:
                raise OutputError(problem + " (not retried)", output=self.name, hint="check the url and its token")
            retry_after = response.headers.get("retry-after", "")
            asked = float(retry_after) if retry_after.isdigit() else 0.0
        raise OutputError(f"gave up after {self.retries + 1} attempts: {problem}", output=self.name)

    def close(self) -> None:
        self._client.close()
