"""What `kubetrail serve` runs: the store, the receiver on top of it, the tailers and retention, wired together.

`ServeApp.asgi` is the one ASGI app the HTTP server serves; detection and the web UI plug in here later.
Opening fails fast (store locked, bad token file, damaged checkpoint) before anything listens.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubetrail.collect.auth import Authenticator, CertificateMap, TokenTable
from kubetrail.collect.checkpoint import CheckpointStore
from kubetrail.collect.limits import Limits
from kubetrail.collect.metrics import Labels, Registry, TimedFileOps
from kubetrail.collect.receiver import Receiver
from kubetrail.collect.tailer import PipelineSink, Tailer, TailOptions
from kubetrail.pipeline import Pipeline
from kubetrail.pipeline.detection import default_rule_specs
from kubetrail.pipeline.detection_process import DetectionProcess, DetectionSettings
from kubetrail.serve.config import ServeConfig, ServeConfigError
from kubetrail.serve.detection_metrics import register_detection_metrics
from kubetrail.store import FileOps, Store, StoreOptions, StoreStats

if TYPE_CHECKING:
    from kubetrail.sources.base import Source
    from kubetrail.sources.firehose import FirehoseEndpoint
    from kubetrail.sources.pubsub_push import PubSubPushEndpoint
    from kubetrail.ui.mount import UIService

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
RETENTION_EVERY_SECONDS = 3600.0


@dataclass
class ShutdownSummary:
    """What closing did, for the last line `serve` prints."""

    sealed_files: int
    sealed_rows: int
    tail_lines: int


def _open_ui(config: ServeConfig, store: Store) -> UIService | None:
    """The web UI (None with `--no-ui`), imported only when it is served (it pulls in Starlette and Jinja2)."""
    if not config.ui:
        return None
    from kubetrail.ui.mount import UIMountError, UISettings, open_ui

    settings = UISettings(
        host=config.host,
        ui_port=config.ui_port,
        ui_token_file=config.ui_token_file,
        ui_users_file=config.ui_users_file,
        tls_cert=config.tls_cert if config.tls else None,
        tls_key=config.tls_key if config.tls else None,
    )
    try:
        return open_ui(settings, store)
    except UIMountError as error:
        raise ServeConfigError(error.message, file=error.file, field=error.field, hint=error.hint) from None


def _open_detection(config: ServeConfig, store: Store) -> DetectionProcess | None:
    """Detection in its own process (None without rules), fed what the store makes durable; the events the
    store recovered from its WAL at start go through the stateless rules once more."""
    specs = list(config.rules) if config.rules is not None else default_rule_specs()
    if not specs:
        if config.rules is None:
            log.warning("no detection rules: events are stored but not checked (pass --rules)")
        return None
    settings = DetectionSettings(
        tuple(str(spec) for spec in specs),
        str(store.layout.root),
        outputs_file=None if config.outputs is None else str(config.outputs),
        max_keys=config.max_keys,
    )
    detection = DetectionProcess(settings)
    detection.replay(store.tail_rows())
    store.on_durable = detection.submit
    # every door waits (or answers 503) while detection's backlog is full: late alerts, none lost, bounded memory
    store.admit = lambda: "detection is behind" if detection.full else None
    return detection


class ServeApp:
    """The long-running parts of `serve`, opened in order and closed in reverse."""

    def __init__(self, config: ServeConfig, *, file_ops: FileOps | None = None) -> None:
        """`file_ops` replaces the WAL's system calls (tests inject a full disk with it)."""
        self.config = config
        self._file_ops = file_ops
        self.metrics = Registry()
        self.store: Store | None = None
        self.pipeline: Pipeline | None = None
        self.receiver: Receiver | None = None
        self.tailers: list[Tailer] = []
        self.ui: UIService | None = None
        self.detection: DetectionProcess | None = None
        self.sources: list[Source] = []
        self.firehose: FirehoseEndpoint | None = None
        self.pubsub_push: PubSubPushEndpoint | None = None
        self._front: Any = None
        """The receiver wrapped in the push routes (Firehose, Pub/Sub), when any is configured."""
        self._stop = threading.Event()
        self._retention: threading.Thread | None = None

    # ----- opening --------------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store and build the receiver and tailers (nothing runs yet)."""
        config = self.config
        auth = Authenticator(
            TokenTable.load(config.token_file) if config.token_file is not None else None,
            CertificateMap.parse(config.client_cert_clusters) if config.client_ca is not None else None,
        )
        self.store = Store.open(config.store, StoreOptions(file_ops=TimedFileOps(self.metrics.fsync, self._file_ops)))
        self.pipeline = Pipeline(self.store, redact=config.redact, default_cluster=config.cluster)
        try:
            self.detection = _open_detection(config, self.store)
            if self.detection is not None:
                register_detection_metrics(self.detection, self.metrics)
            self.receiver = Receiver(
                self.pipeline,
                default_cluster=config.cluster,
                limits=Limits(config.max_body_bytes, config.max_event_bytes),
                auth=auth,
                metrics=self.metrics,
            )
            if self.detection is not None:
                detection = self.detection
                self.receiver.backlogged = lambda: detection.full
                self.receiver.health_checks.append(detection.health)
                self.metrics.gauge(
                    "kubetrail_detection_refused_batches_total",
                    "Batches answered 503 because detection's backlog was full (the sender retries).",
                    read=lambda: [((), float(self.receiver.detection_refusals if self.receiver else 0))],
                    kind="counter",
                )
            checkpoints = CheckpointStore(config.store / CHECKPOINT_DIR)
            options = TailOptions(poll_interval=config.poll_interval, from_start=config.tail_from_start)
            for spec in config.tails:
                checkpoints.load(spec.path)
                self.tailers.append(Tailer(spec.path, PipelineSink(self.pipeline, spec.cluster), checkpoints, options))
            if config.sources or config.firehose_key_file is not None or config.pubsub_push is not None:
                self._open_sources()
            self._register_gauges()
            self.ui = _open_ui(config, self.store)
        except BaseException:
            if self.detection is not None:
                self.detection.close()
            self.store.close(seal=False)
            self.store = None
            raise

    @property
    def asgi(self) -> Any:
        """The ASGI app to serve."""
        if self.receiver is None:
            raise RuntimeError("ServeApp.open() first")
        inner = self.receiver if self._front is None else self._front
        return inner if self.ui is None else self.ui.wrap(inner)

    def _open_sources(self) -> None:
        """The cloud sources and the push routes (imported only when configured), in /metrics and /readyz."""
        from kubetrail.collect.auth import AuthConfigError
        from kubetrail.sources.checkpoint import SourceCheckpoints
        from kubetrail.sources.metrics import register_source_metrics

        config, receiver, pipeline = self.config, self.receiver, self.pipeline
        assert receiver is not None and pipeline is not None
        if config.firehose_key_file is not None:
            from kubetrail.sources.firehose import FirehoseEndpoint

            try:
                keys = TokenTable.load(config.firehose_key_file)
            except AuthConfigError as error:
                raise ServeConfigError(error.message, file=error.file, field="firehose.access-key-file") from None
            self.firehose = FirehoseEndpoint(
                receiver,
                pipeline,
                keys,
                limits=receiver.limits,
                metrics=self.metrics,
                accepting=lambda: receiver.accepting,
            )
            self.sources.append(self.firehose)
        if config.pubsub_push is not None:
            from kubetrail.extras import require
            from kubetrail.sources.oidc import KeySet, OidcVerifier
            from kubetrail.sources.pubsub_push import PubSubPushEndpoint

            require("gcp", "the Pub/Sub push endpoint", "jwt")
            require("gcp", "the Pub/Sub push endpoint", "cryptography")
            settings = config.pubsub_push
            verifier = OidcVerifier(
                KeySet(settings.jwks), settings.audiences, service_accounts=settings.service_accounts
            )
            self.pubsub_push = PubSubPushEndpoint(
                self.firehose or receiver,
                pipeline,
                verifier,
                limits=receiver.limits,
                metrics=self.metrics,
                accepting=lambda: receiver.accepting,
            )
            self.sources.append(self.pubsub_push)
        self._front = self.pubsub_push or self.firehose
        checkpoints = SourceCheckpoints(config.store / CHECKPOINT_DIR)
        self.sources.extend(spec.open(pipeline, checkpoints) for spec in config.sources)
        register_source_metrics(self.metrics, self.sources)
        receiver.health_checks.extend(source.health for source in self.sources)

    def _register_gauges(self) -> None:
        store = self.store
        assert store is not None

        def from_stats(attribute: str) -> Iterable[tuple[Labels, float]]:
            stats: StoreStats = store.stats()
            return [((), float(getattr(stats, attribute)))]

        for name, attribute, text in (
            ("kubetrail_store_sealed_files", "sealed_files", "Sealed Parquet files."),
            ("kubetrail_store_sealed_events", "sealed_rows", "Events in sealed Parquet files."),
            ("kubetrail_store_sealed_bytes", "sealed_bytes", "Bytes of sealed Parquet files."),
            ("kubetrail_store_tail_events", "tail_rows", "Acknowledged events not sealed yet."),
            ("kubetrail_store_wal_segments", "wal_segments", "WAL segments on disk."),
        ):
            self.metrics.gauge(name, text, read=functools.partial(from_stats, attribute))
        self.metrics.gauge(
            "kubetrail_store_dead_letters_total",
            "Refused inputs written to the dead-letter file since start.",
            read=lambda: [((), float(store.dead_letters.count))],
            kind="counter",
        )
        self.metrics.gauge(
            "kubetrail_store_dead_letters_dropped_total",
            "Refused inputs not kept because the day's dead-letter file reached its size limit.",
            read=lambda: [((), float(store.dead_letters.dropped))],
            kind="counter",
        )
        self.metrics.gauge(
            "kubetrail_store_dead_letter_bytes_total",
            "Bytes written to the dead-letter file since start.",
            read=lambda: [((), float(store.dead_letters.bytes))],
            kind="counter",
        )
        tailers = self.tailers

        def per_file(attribute: str) -> Iterable[tuple[Labels, float]]:
            return [((tailer.path,), float(getattr(tailer.stats, attribute))) for tailer in tailers]

        for name, attribute, kind, text in (
            ("kubetrail_tailer_lines_total", "lines", "counter", "Lines delivered to the store."),
            ("kubetrail_tailer_renames_total", "renames", "counter", "Rotations by rename followed."),
            ("kubetrail_tailer_truncations_total", "truncations", "counter", "Copy-truncate rotations followed."),
            ("kubetrail_tailer_failures_total", "failures", "counter", "Failed steps (retried)."),
            ("kubetrail_tailer_lost_rotations_total", "lost_rotations", "counter", "Rotations whose rest was gone."),
            ("kubetrail_tailer_lag_bytes", "lag_bytes", "gauge", "Bytes written but not yet read."),
        ):
            self.metrics.gauge(name, text, ("file",), read=functools.partial(per_file, attribute), kind=kind)

    # ----- running --------------------------------------------------------------------------------------

    def start_background(self) -> None:
        """Start the tailers, the retention loop and the UI's own port."""
        if self.ui is not None:
            self.ui.start()
        for tailer in self.tailers:
            tailer.start()
        for source in self.sources:
            source.start()
        if self.config.retention_days is not None or self.config.max_bytes is not None:
            self._retention = threading.Thread(target=self._retention_loop, name="kubetrail-retention", daemon=True)
            self._retention.start()

    def _retention_loop(self) -> None:
        while not self._stop.is_set():
            store = self.store
            if store is None:
                return
            try:
                plan = store.apply_retention(retention_days=self.config.retention_days, max_bytes=self.config.max_bytes)
                if plan.removed:
                    log.info("retention removed %d sealed files (%s)", len(plan.removed), plan.reason)
            except Exception as error:
                log.warning("retention failed, will retry: %s", error)
            self._stop.wait(RETENTION_EVERY_SECONDS)

    # ----- closing --------------------------------------------------------------------------------------

    def close(self) -> ShutdownSummary:
        """Refuse new events, stop the tailers, then seal and close the store."""
        if self.receiver is not None:
            self.receiver.accepting = False
        self._stop.set()
        if self.ui is not None:
            self.ui.stop()
        lines = 0
        for tailer in self.tailers:
            tailer.stop()
            lines += tailer.stats.lines
        for source in self.sources:
            source.stop()
        if self._retention is not None:
            self._retention.join(timeout=30)
        summary = ShutdownSummary(0, 0, lines)
        if self.detection is not None:
            self.detection.close()
        if self.store is not None:
            store, self.store = self.store, None
            try:
                store.close()
            finally:
                stats = store.stats()
                summary = ShutdownSummary(stats.sealed_files, stats.sealed_rows, lines)
        return summary
