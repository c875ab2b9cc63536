"""A running worker's `/healthz`, `/readyz` and `/metrics`, on a port of their own for the kubelet and Prometheus.

uvicorn serves them as a task of the worker's own event loop, so `/healthz` answering shows that loop is not
stuck; `/readyz` says whether batches can reach this worker now (connected to NATS, in the worker pool).
The worker keeps its own SIGTERM/SIGINT handling: this server never installs signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator, Iterable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kubetrail.bus.config import BusError
from kubetrail.bus.worker import Worker
from kubetrail.collect.metrics import CONTENT_TYPE, Gauge, Labels

GRACEFUL_SECONDS = 2


def parse_health_listen(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` (`[::1]:8081` for IPv6) → (host, port); `off` → None."""
    if text.strip().lower() == "off":
        return None
    host, _, port_text = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise BusError(f"--health-listen: {text!r} is not HOST:PORT", hint="e.g. 127.0.0.1:8081, 0.0.0.0:8081 or off")
    return host, int(port_text)


def not_ready(worker: Worker) -> str | None:
    """Why batches cannot reach this worker right now, or None when they can."""
    if worker.ready:
        return None
    if not worker.joined:
        return "not yet connected to NATS and in the worker pool"
    return "not connected to NATS (reconnecting) or stopping"


def worker_metrics(worker: Worker) -> list[Gauge]:
    """The worker's counts as Prometheus metrics, read from `Worker.stats` at scrape time."""
    stats = worker.stats

    def total(attribute: str) -> Callable[[], Iterable[tuple[Labels, float]]]:
        return lambda: [((), float(getattr(stats, attribute)))]

    def per_cluster() -> Iterable[tuple[Labels, float]]:
        return [((cluster,), float(count)) for cluster, count in stats.clusters.items()]

    config = worker.config
    return [
        Gauge(
            "kubetrail_worker_info",
            "This worker's name, stream and consumer (always 1).",
            ("worker", "stream", "consumer"),
            read=lambda: [((worker.worker_id, config.stream, config.consumer), 1.0)],
        ),
        Gauge(
            "kubetrail_worker_ready",
            "1 while connected to NATS and in the worker pool, else 0.",
            read=lambda: [((), 1.0 if worker.ready else 0.0)],
        ),
        Gauge("kubetrail_worker_partitions", "Partitions this worker owns now.", read=total("partitions")),
        Gauge(
            "kubetrail_worker_handovers_total",
            "Partitions taken on or given up (workers joining, leaving or dying).",
            read=total("handovers"),
            kind="counter",
        ),
        Gauge("kubetrail_worker_batches_total", "Bus messages stored.", read=total("batches"), kind="counter"),
        Gauge(
            "kubetrail_worker_events_total",
            "Events stored for the first time, per cluster.",
            ("cluster",),
            read=per_cluster,
            kind="counter",
        ),
        Gauge(
            "kubetrail_worker_events_duplicate_total",
            "Events this worker had already stored (redelivered batches).",
            read=total("duplicates"),
            kind="counter",
        ),
        Gauge(
            "kubetrail_worker_events_malformed_total",
            "Events that did not decode, written to the dead-letter file.",
            read=total("malformed"),
            kind="counter",
        ),
        Gauge("kubetrail_worker_alerts_total", "Alerts raised and published.", read=total("alerts"), kind="counter"),
        Gauge(
            "kubetrail_worker_unstored_batches_total",
            "Bus messages handed back to JetStream unacknowledged because the store refused them (disk full or "
            "failing); JetStream delivers them again.",
            read=total("unstored"),
            kind="counter",
        ),
        Gauge(
            "kubetrail_worker_redelivered_batches_total",
            "Bus messages delivered more than once (a worker died or was slow to acknowledge).",
            read=total("redelivered"),
            kind="counter",
        ),
    ]


def health_app(worker: Worker) -> Starlette:
    """The ASGI app: liveness, readiness and metrics of one worker."""
    metrics = worker_metrics(worker)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        problem = not_ready(worker)
        return PlainTextResponse(f"{problem or 'ok'}\n", status_code=503 if problem else 200)

    async def exposition(request: Request) -> Response:
        lines = [line for metric in metrics for line in (*metric.header(), *metric.samples())]
        return Response("\n".join(lines) + "\n", media_type=None, headers={"content-type": CONTENT_TYPE})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", exposition, methods=["GET"]),
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: the worker handles SIGTERM/SIGINT and stops this server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HealthServer:
    """The health port, bound at construction (a taken port is a clear error) and served in the running loop."""

    def __init__(self, worker: Worker, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            raise BusError(
                f"--health-listen: cannot listen on {host}:{port}: {error.strerror}",
                hint="pick a free port, or `--health-listen off`",
            ) from None
        sock.listen(64)
        sock.setblocking(False)
        self._socket = sock
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{sock.getsockname()[1]}"
        self._server = _Server(
            uvicorn.Config(
                health_app(worker),
                lifespan="off",
                access_log=False,
                log_level="warning",
                server_header=False,
                timeout_graceful_shutdown=GRACEFUL_SECONDS,
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Serve as a task of the current loop; returns once requests are answered."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="kubetrail-worker-health")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise BusError(f"the health server on {self.url} did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Close open connections and the port."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._socket.close()
