"""Decode throughput: kubetrail's event model against stdlib json, orjson and a plain msgspec decoder.

Every contender decodes the same NDJSON file of realistic audit events (≥200k by default),
one event per line. Target: kubetrail's `read_events` (typed events, bodies kept raw) at least
3x the events/s of `json.loads`. Run alone with `python -m bench.bench_decode`.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson

from bench.common import BenchResult, timed
from kubetrail.model import (
    Event,
    Level,
    ObjectReference,
    Stage,
    Status,
    UserInfo,
    encode_ndjson,
    format_microtime,
    read_events,
)

NAME = "decode"
EVENTS = 200_000
SEED = 7
TARGET_RATIO_VS_JSON = 3.0
DATA_DIR = Path(__file__).resolve().parent / "data"


def scaled(count: int) -> int:
    """`count` times KUBETRAIL_BENCH_SCALE (default 1), at least 1000."""
    return max(1000, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


# ---- a local stand-in for bench.corpus, used only until that module exists -----------------------------------


def _lease(name: str, namespace: str, holder: str, moment: datetime) -> dict[str, Any]:
    return {
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.UUID(int=hash(name) & (2**128 - 1))),
            "resourceVersion": str(int(moment.timestamp()) % 10_000_000),
            "creationTimestamp": "2026-03-01T08:00:00Z",
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 40,
            "acquireTime": "2026-03-01T08:00:05.000000Z",
            "renewTime": format_microtime(moment),
            "leaseTransitions": 3,
        },
    }


def _pod(name: str, namespace: str, node: str, image: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": name.rsplit("-", 2)[0], "pod-template-hash": "7c9d5f"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name.rsplit("-", 1)[0]}],
        },
        "spec": {
            "nodeName": node,
            "serviceAccountName": "default",
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
                }
            ],
        },
        "status": {"phase": "Running", "podIP": "10.244.1.17", "qosClass": "Burstable"},
    }


def local_realistic_events(count: int, seed: int = SEED) -> list[Event]:
    """A small cluster's mixed traffic (leases, node status, pods, probes, users); replaced by bench.corpus."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 19, 10, 0, tzinfo=UTC)
    nodes = [f"node-{index}" for index in range(3)]
    namespaces = ["default", "payments", "checkout", "monitoring", "kube-system"]
    images = ["registry.example.com/api:1.4.2", "nginx:1.27", "ghcr.io/example/worker:2.0.1"]
    events: list[Event] = []
    for index in range(count):
        moment = start + timedelta(microseconds=index * 4_000 + rng.randrange(1000))
        stamp = format_microtime(moment)
        done = format_microtime(moment + timedelta(microseconds=rng.randrange(500, 20_000)))
        node = rng.choice(nodes)
        namespace = rng.choice(namespaces)
        kind = rng.random()
        common: dict[str, Any] = {
            "auditID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "stage": Stage.RESPONSE_COMPLETE,
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": done,
            "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
        }
        if kind < 0.35:
            body = orjson.dumps(_lease(node, "kube-node-lease", node, moment))
            events.append(
                Event(
                    level=Level.REQUEST_RESPONSE,
                    requestURI=f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}",
                    verb="update",
                    user=UserInfo(username=f"system:node:{node}", groups=["system:nodes", "system:authenticated"]),
                    sourceIPs=[f"192.168.1.{nodes.index(node) + 10}"],
                    userAgent="kubelet/v1.31.0 (linux/amd64) kubernetes/9b8c0c6",
                    objectRef=ObjectReference(
                        resource="leases",
                        namespace="kube-node-lease",
                        name=node,
                        apiGroup="coordination.k8s.io",
                        apiVersion="v1",
                    ),
                    responseStatus=Status(metadata={}, code=200),
                    requestObject=msgspec.Raw(body),
                    responseObject=msgspec.Raw(body),
                    **common,
                )
            )
        elif kind < 0.75:
            name = f"api-{rng.randrange(16):x}{rng.randrange(4096):03x}-{rng.randrange(99999):05d}"
            body = orjson.dumps(_pod(name, namespace, node, rng.choice(images)))
            events.append(
                Event(
                    level=Level.REQUEST_RESPONSE,
                    requestURI=f"/api/v1/namespaces/{namespace}/pods/{name}",
                    verb="get",
                    user=UserInfo(
                        username="system:serviceaccount:kube-system:replicaset-controller",
                        uid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        groups=["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
                    ),
                    sourceIPs=["192.168.1.2"],
                    userAgent="kube-controller-manager/v1.31.0 (linux/amd64) kubernetes/9b8c0c6/system:serviceaccount",
                    objectRef=ObjectReference(resource="pods", namespace=namespace, name=name, apiVersion="v1"),
                    responseStatus=Status(metadata={}, code=200),
                    responseObject=msgspec.Raw(body),
                    **common,
                )
            )
        elif kind < 0.9:
            events.append(
                Event(
                    level=Level.METADATA,
                    requestURI=f"/api/v1/namespaces/{namespace}/secrets?limit=500&resourceVersion=0",
                    verb="list",
                    user=UserInfo(username="jane@example.com", groups=["developers", "system:authenticated"]),
                    sourceIPs=["10.0.12.7"],
                    userAgent="kubectl/v1.31.0 (linux/amd64) kubernetes/9b8c0c6",
                    objectRef=ObjectReference(resource="secrets", namespace=namespace, apiVersion="v1"),
                    responseStatus=Status(metadata={}, code=200),
                    **common,
                )
            )
        else:
            events.append(
                Event(
                    level=Level.METADATA,
                    requestURI=rng.choice(["/healthz", "/readyz?verbose", "/livez", "/metrics", "/version"]),
                    verb="get",
                    user=UserInfo(username="system:anonymous", groups=["system:unauthenticated"]),
                    sourceIPs=[f"192.168.1.{rng.randrange(2, 250)}"],
                    userAgent="kube-probe/1.31",
                    responseStatus=Status(metadata={}, code=200),
                    **common,
                )
            )
    return events


def local_write_realistic_ndjson(path: Path, count: int, seed: int = SEED) -> Path:
    """Write (once; cached by name) the local stand-in stream as NDJSON."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(encode_ndjson(local_realistic_events(count, seed)))
        partial.replace(path)
    return path


def corpus_file(count: int, seed: int = SEED) -> tuple[Path, str]:
    """The NDJSON corpus to decode and where it came from (bench.corpus when present)."""
    try:
        from bench.corpus import write_realistic_ndjson  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        path = DATA_DIR / f"decode-local-{count}-{seed}.ndjson"
        return local_write_realistic_ndjson(path, count, seed), "local builder (bench.corpus not present)"
    path = DATA_DIR / f"realistic-{count}-{seed}.ndjson"
    return Path(write_realistic_ndjson(path, count, seed)), "bench.corpus"


# ---- the measurement ---------------------------------------------------------------------------------------------


def _per_line(decode: Callable[[bytes], Any], lines: list[bytes]) -> Callable[[], int]:
    def loop() -> int:
        for line in lines:
            decode(line)
        return len(lines)

    return loop


def _kubetrail(path: Path) -> Callable[[], int]:
    def loop() -> int:
        count = 0
        for _ in read_events(path):
            count += 1
        return count

    return loop


def run() -> list[BenchResult]:
    """Measure events/s and MB/s of each decoder over the same NDJSON file."""
    count = scaled(EVENTS)
    path, origin = corpus_file(count)
    data = path.read_bytes()
    lines = data.splitlines()
    megabytes = len(data) / 1e6
    detail = {
        "events": len(lines),
        "megabytes": round(megabytes, 1),
        "average_event_bytes": round(len(data) / max(1, len(lines))),
        "corpus": origin,
    }
    raw_msgspec = msgspec.json.Decoder(Event)
    contenders: list[tuple[str, Callable[[], int], str]] = [
        ("json.loads per line", _per_line(json.loads, lines), "stdlib json → dict"),
        ("orjson.loads per line", _per_line(orjson.loads, lines), "orjson → dict"),
        ("msgspec Decoder(Event) per line", _per_line(raw_msgspec.decode, lines), "typed Event, bodies raw"),
        ("kubetrail read_events(file)", _kubetrail(path), "typed Event, bodies raw, reads + splits the file"),
    ]
    rates: dict[str, float] = {}
    results: list[BenchResult] = []
    for label, function, what in contenders:
        seconds, decoded = timed(function, repeat=3)
        if decoded != len(lines):
            raise RuntimeError(f"{label} decoded {decoded} events, expected {len(lines)}")
        rates[label] = len(lines) / seconds
        info = detail | {"what": what, "seconds": round(seconds, 3)}
        results.append(BenchResult(NAME, f"{label}: events/s", rates[label], "events/s", detail=info))
        results.append(BenchResult(NAME, f"{label}: MB/s", megabytes / seconds, "MB/s", detail=info))
    kubetrail = rates["kubetrail read_events(file)"]
    results.append(
        BenchResult(
            NAME,
            "kubetrail / json.loads",
            kubetrail / rates["json.loads per line"],
            "x",
            target=TARGET_RATIO_VS_JSON,
            detail=detail,
        )
    )
    results.append(BenchResult(NAME, "kubetrail / orjson", kubetrail / rates["orjson.loads per line"], "x"))
    results.append(
        BenchResult(NAME, "kubetrail / raw msgspec", kubetrail / rates["msgspec Decoder(Event) per line"], "x")
    )
    return results


if __name__ == "__main__":
    from rich.console import Console

    from bench.__main__ import render

    render(run(), Console(width=132))
