"""The webhook audit backend: POST `audit.k8s.io/v1` EventList JSON, retrying as kube-apiserver does.

Fidelity notes (k8s.io/apiserver plugin/pkg/audit/webhook and pkg/util/webhook, client-go rest):
- success is a status in 200..206; anything else, and any transport failure or timeout, is an
  error, and the audit webhook retries *every* error (`retryOnError`), not only 5xx;
- retries follow `webhook_backoff(initial)`: 5 attempts, sleeping 10, 15, 22.5, 33.75 s (+0-20%);
- within one attempt, a 429 or 5xx carrying an integer `Retry-After` is re-sent after that many
  seconds, up to 10 times (client-go's `maxRetries`);
- each request times out after 30 s; redirects are followed;
- a batch that still fails is counted and logged (auditIDs only, never bodies) and reported as
  False, which `blocking-strict` passes to the caller and `blocking` ignores.
"""

from __future__ import annotations

import functools
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from kubetrail import __version__ as _version
from kubetrail.emit.backend import Backend, BackendError
from kubetrail.emit.buffered import BatchConfig, Buffered
from kubetrail.emit.kubeconfig import WebhookClientConfig, load_kubeconfig
from kubetrail.emit.options import ALLOWED_MODES, MODE_BATCH, MODE_BLOCKING, IgnoreErrors
from kubetrail.emit.plugin_error import handle_plugin_error
from kubetrail.emit.retry import (
    DEFAULT_INITIAL_BACKOFF,
    Backoff,
    retry_on_error,
    webhook_backoff,
    with_exponential_backoff,
)
from kubetrail.emit.throttle import TokenBucket
from kubetrail.emit.truncate import TruncateConfig, Truncating
from kubetrail.model.codec import encode_event_list
from kubetrail.model.event import Event

PLUGIN_NAME = "webhook"
DEFAULT_REQUEST_TIMEOUT = 30.0
MAX_RETRY_AFTER_RETRIES = 10
_BODY_EXCERPT = 300


@functools.cache
def _system_roots() -> ssl.SSLContext:
    """One shared verifying context for plain-http servers (used only if they redirect to https)."""
    return ssl.create_default_context()


class WebhookError(BackendError):
    """One failed POST: the receiver answered with a non-success status or could not be reached."""

    def __init__(self, message: str, *, server: str, status: int | None = None, hint: str = "") -> None:
        self.server = server
        self.status = status
        self.hint = hint
        super().__init__(message)


@dataclass
class WebhookStats:
    """Counters a metrics endpoint can expose: batches and events delivered or given up on, retries."""

    posts: int = 0
    sent_events: int = 0
    failed_batches: int = 0
    failed_events: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


def _retry_after(response: httpx.Response) -> int | None:
    """Seconds a 429/5xx asks us to wait (`Retry-After` as an integer, as client-go reads it), else None."""
    if response.status_code != 429 and response.status_code < 500:
        return None
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(int(value.strip()), 0)
    except ValueError:
        return None


class WebhookBackend:
    """Sends each `process_events` call as one EventList POST (blocking-strict semantics: False on failure)."""

    def __init__(
        self,
        config: WebhookClientConfig,
        *,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        backoff: Backoff | None = None,
        should_retry: Callable[[Exception | None], bool] = retry_on_error,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
        plugin_name: str = PLUGIN_NAME,
    ) -> None:
        self.config = config
        self.backoff = backoff or webhook_backoff(initial_backoff)
        self.stats = WebhookStats()
        self._should_retry = should_retry
        self._sleep = sleep
        self._rand = rand
        self._name = plugin_name
        context = config.ssl_context()
        self._extensions = {"sni_hostname": config.tls_server_name} if config.tls_server_name else {}
        self._client = httpx.Client(
            verify=context if context is not None else _system_roots(),
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            transport=transport,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json, */*",
                "User-Agent": f"kubetrail/{_version} ({os.uname().sysname.lower()}) audit-webhook",
            },
        )
        config.bearer_token()  # an unreadable tokenFile is a configuration error, found now

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], **options: object) -> WebhookBackend:
        """A backend for the server a kubeconfig file (`--audit-webhook-config-file`) describes."""
        return cls(load_kubeconfig(path), **options)  # type: ignore[arg-type]

    def name(self) -> str:
        return self._name

    def run(self) -> None:
        """Nothing runs in the background: each call posts synchronously."""

    def shutdown(self) -> None:
        """Close the connection pool; nothing is buffered here."""
        self._client.close()

    def process_events(self, events: Sequence[Event]) -> bool:
        """POST the events as one EventList with retries; False (counted, logged) when they were not delivered."""
        if not events:
            return True
        error = self.send(events)
        if error is not None:
            self.stats.add(failed_batches=1, failed_events=len(events))
            handle_plugin_error(self._name, error, events)
            return False
        self.stats.add(sent_events=len(events))
        return True

    def send(self, events: Sequence[Event]) -> Exception | None:
        """Deliver one batch with the apiserver's retries; the last error, or None once accepted."""
        body = encode_event_list(events)
        attempts = 0

        def attempt() -> Exception | None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.stats.add(retries=1)
            return self._post(body)

        return with_exponential_backoff(
            attempt, self.backoff, should_retry=self._should_retry, sleep=self._sleep, rand=self._rand
        )

    def _headers(self) -> dict[str, str]:
        token = self.config.bearer_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _post(self, body: bytes) -> Exception | None:
        server = self.config.server
        retry_after_retries = 0
        while True:
            self.stats.add(posts=1)
            try:
                response = self._client.post(server, content=body, headers=self._headers(), extensions=self._extensions)
            except httpx.HTTPError as error:
                return WebhookError(f"POST {server} failed: {error or type(error).__name__}", server=server)
            except BackendError as error:
                return error
            status = response.status_code
            if 200 <= status <= 206:
                return None
            wait = _retry_after(response)
            if wait is not None and retry_after_retries < MAX_RETRY_AFTER_RETRIES:
                retry_after_retries += 1
                self._sleep(float(wait))
                continue
            excerpt = response.text[:_BODY_EXCERPT].strip()
            return WebhookError(
                f"POST {server}: the server answered {status} {response.reason_phrase}"
                + (f": {excerpt}" if excerpt else ""),
                server=server,
                status=status,
            )


def new_webhook_backend(
    config: WebhookClientConfig | str | os.PathLike[str],
    *,
    mode: str = MODE_BATCH,
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
    batch: BatchConfig | None = None,
    truncate: TruncateConfig | None = None,
    throttle: TokenBucket | None = None,
    **options: Any,
) -> Backend:
    """The webhook backend as `--audit-webhook-*` flags compose it: the webhook, wrapped for the mode
    (`batch`: Buffered with the webhook's batch defaults; `blocking`: failures ignored; `blocking-strict`:
    failures reported), then in Truncating when `truncate` is given (the apiserver's truncation is off
    by default). Call `run()` before use and `shutdown()` at the end, which flushes the buffer.
    """
    if mode not in ALLOWED_MODES:
        error = BackendError(f'invalid audit {PLUGIN_NAME} mode {mode}, allowed modes are "{",".join(ALLOWED_MODES)}"')
        error.hint = "use batch (the default), blocking or blocking-strict"
        raise error
    client = config if isinstance(config, WebhookClientConfig) else load_kubeconfig(config)
    backend: Backend = WebhookBackend(client, initial_backoff=initial_backoff, **options)
    if mode == MODE_BLOCKING:
        backend = IgnoreErrors(backend)
    elif mode == MODE_BATCH:
        backend = Buffered(backend, batch or BatchConfig.for_webhook(), plugin=PLUGIN_NAME, throttle=throttle)
    if truncate is not None:
        backend = Truncating(backend, truncate)
    return backend
