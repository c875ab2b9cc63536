"""Detection inside serve: alerts from acknowledged events reach the `alerts` view and the outputs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubetrail.alert.outputs import JsonlFileOutput, Outputs, Route
from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.priority import Priority
from kubetrail.model import decode_event
from kubetrail.pipeline.detection import Detection
from kubetrail.serve.config import build_config
from kubetrail.serve.server import BackgroundServer
from kubetrail.store import Durable, Store, StoreOptions
from kubetrail.store.alerts import AlertLog
from tests.serve.helpers import audit_event, event_list, serving

RULES = """\
- rule: Exec into pod
  desc: Someone ran a command in a container
  condition: ka.verb=create and ka.target.resource=pods and ka.target.subresource=exec
  output: Exec into pod (user=%ka.user.name pod=%ka.target.name ns=%ka.target.namespace)
  priority: WARNING
  source: k8s_audit
  tags: [k8s, mitre_execution]
"""


def exec_event(number: int, user: str = "mallory") -> dict[str, Any]:
    event = audit_event(number, prefix="x")
    event.update(
        verb="create",
        requestURI=f"/api/v1/namespaces/default/pods/web-{number}/exec?command=sh&container=web",
        user={"username": user, "groups": ["system:authenticated"]},
    )
    event["objectRef"]["subresource"] = "exec"
    return event


def wait_for_lines(path: Path, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines")


def alert_rows(store_dir: Path) -> list[tuple[Any, ...]]:
    store = Store.open(store_dir, read_only=True)
    try:
        connection = store.query_connection()
        return connection.execute(
            "select rule, priority, priority_rank, cluster, audit_id, output_fields->>'ka.user.name', tags "
            "from alerts order by audit_id"
        ).fetchall()
    finally:
        store.close()


def test_serve_stores_and_sends_alerts_of_acknowledged_events(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    out = tmp_path / "alerts.jsonl"
    (tmp_path / "outputs.yaml").write_text(f"outputs:\n  - type: file\n    path: {out}\n")
    store = tmp_path / "store"
    with serving(
        "--store", str(store), "--listen", "127.0.0.1:0", "--rules", str(tmp_path / "rules.yaml"),
        "--outputs", str(tmp_path / "outputs.yaml"),
    ) as server:  # fmt: skip
        url = f"{server.url}/audit/prod"
        headers = {"content-type": "application/json"}
        batch = event_list([audit_event(1), exec_event(2), audit_event(3)])
        assert httpx.post(url, content=batch, headers=headers).status_code == 200
        first = wait_for_lines(out, 1)
        # the apiserver retries the same batch: stored once, so alerted once
        assert httpx.post(url, content=batch, headers=headers).json()["duplicates"] == 3
        assert httpx.post(url, content=event_list([exec_event(4, "eve")]), headers=headers).status_code == 200
        lines = wait_for_lines(out, 2)
        # detection runs in its own process, which reports its counters every REPORT_EVERY_SECONDS
        expected = ['kubetrail_output_alerts_total{output="file",fate="sent"} 2', "kubetrail_detection_events_total 4"]
        deadline = time.monotonic() + 30
        metrics = httpx.get(f"{server.url}/metrics").text
        while not all(line in metrics for line in expected) and time.monotonic() < deadline:
            time.sleep(0.05)
            metrics = httpx.get(f"{server.url}/metrics").text
        assert all(line in metrics for line in expected), metrics
        assert server.stop() == 0
    assert first[0]["rule"] == "Exec into pod"
    assert first[0]["priority"] == "Warning"
    assert first[0]["cluster"] == "prod"
    assert first[0]["output"].endswith("Warning Exec into pod (user=mallory pod=web-2 ns=default)")
    assert [line["auditID"] for line in lines] == [exec_event(2)["auditID"], exec_event(4)["auditID"]]
    rows = alert_rows(store)
    assert rows == [
        ("Exec into pod", "Warning", 4, "prod", exec_event(2)["auditID"], "mallory", ["k8s", "mitre_execution"]),
        ("Exec into pod", "Warning", 4, "prod", exec_event(4)["auditID"], "eve", ["k8s", "mitre_execution"]),
    ]


def test_tailed_events_are_detected_too(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    log_file = tmp_path / "audit.log"
    log_file.write_text(json.dumps(exec_event(7)) + "\n" + json.dumps(audit_event(8)) + "\n")
    config = build_config(
        {},
        {
            "store": str(tmp_path / "store"),
            "listen": "127.0.0.1:0",
            "rules": [str(tmp_path / "rules.yaml")],
            "tail": [{"path": str(log_file), "cluster": "edge"}],
            "poll-interval": 0.05,
        },
    )
    server = BackgroundServer(config)
    server.start()
    try:
        detection = server.app.detection
        assert detection is not None
        deadline = time.monotonic() + 20
        while detection.stats.events < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert detection.drain(10)
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "kubetrail_detection_alerts_total 1" in metrics
    finally:
        server.stop()
    rows = alert_rows(tmp_path / "store")
    assert [(row[0], row[3], row[4]) for row in rows] == [("Exec into pod", "edge", exec_event(7)["auditID"])]


def test_no_alerts_gives_an_empty_alerts_view(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    config = build_config(
        {}, {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0", "rules": [str(tmp_path / "rules.yaml")]}
    )
    server = BackgroundServer(config)
    server.start()
    try:
        response = httpx.post(
            f"{server.url}/audit/prod",
            content=event_list([audit_event(1)]),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 200
    finally:
        server.stop()
    assert alert_rows(tmp_path / "store") == []


class Counting:
    """A small stateful detector: alerts on every third event, keeps its count across restarts."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.seen = 0
        self.gate = gate

    def detect(self, ctx: EventContext) -> list[Alert]:
        if self.gate is not None:
            self.gate.wait(10)
        self.seen += 1
        if self.seen % 3:
            return []
        return [
            Alert(
                rule="every third",
                priority=Priority.NOTICE,
                source="k8s_audit",
                time_ns=1,
                message=f"event {self.seen}",
                output_fields={},
                tags=(),
                audit_id=ctx.event.auditID,
                cluster=ctx.cluster,
            )
        ]

    def save(self, path: str) -> None:
        Path(path).write_text(str(self.seen))

    def load(self, path: str) -> None:
        self.seen = int(Path(path).read_text())


def events(count: int, start: int = 0) -> list[Any]:
    return [decode_event(json.dumps(audit_event(start + n)).encode()) for n in range(count)]


def durable(cluster: str, batch: list[Any]) -> Durable:
    return Durable(cluster, batch, [None] * len(batch))


def test_stateful_state_is_checkpointed_at_close_and_restored_at_start(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first = Detection(
        Counting(), AlertLog(tmp_path), Outputs([Route(JsonlFileOutput(out))]), checkpoint_dir=tmp_path / "ckpt"
    )
    first.start()
    first.submit(durable("prod", events(4)))
    first.close()
    second_detector = Counting()
    second = Detection(second_detector, AlertLog(tmp_path), checkpoint_dir=tmp_path / "ckpt")
    second.start()
    assert second_detector.seen == 4
    second.submit(durable("prod", events(2, start=4)))
    second.close()
    # one alert at the 3rd event before the restart (also sent to the output), one at the 6th after it
    assert [line["rule"] for line in wait_for_lines(out, 1)] == ["every third"]
    stored = next((tmp_path / "alerts").glob("*.jsonl")).read_text().splitlines()
    assert [json.loads(line)["message"] for line in stored] == ["event 3", "event 6"]


def test_a_full_queue_is_counted_not_silent(tmp_path: Path) -> None:
    gate = threading.Event()
    detection = Detection(Counting(gate), AlertLog(tmp_path), queue_events=25)
    detection.start()
    for _ in range(5):
        detection.submit(durable("prod", events(10)))
    dropped = detection.stats.dropped_events
    gate.set()
    detection.close()
    # two batches of 10 fit under 25 waiting events; the other three were refused and counted
    assert dropped == 30
    assert detection.stats.events == 20
    # once the queue has drained there is room again
    again = Detection(Counting(), AlertLog(tmp_path), queue_events=25)
    again.start()
    for _ in range(3):
        again.submit(durable("prod", events(10)))
        assert again.drain(10)
    again.close()
    assert (again.stats.events, again.stats.dropped_events) == (30, 0)


def test_a_failing_output_does_not_stop_storing_alerts(tmp_path: Path) -> None:
    class Down:
        name = "down"

        def send(self, alerts: Sequence[Alert]) -> None:
            raise OSError("connection refused")

        def close(self) -> None:
            pass

    outputs = Outputs([Route(Down())])
    detection = Detection(Counting(), AlertLog(tmp_path), outputs)
    detection.start()
    detection.submit(durable("prod", events(3)))
    detection.close()
    assert outputs.stats()["down"].failed == 1
    assert detection.stats.alerts == 1
    assert len(next((tmp_path / "alerts").glob("*.jsonl")).read_text().splitlines()) == 1


@pytest.mark.parametrize("flag", ["--outputs"])
def test_a_bad_outputs_file_stops_serve_before_it_listens(tmp_path: Path, flag: str) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "outputs.yaml").write_text(
        "outputs:\n  - type: webhook\n    url: http://127.0.0.1:9/x\n    rate: fast\n"
    )
    config = build_config(
        {},
        {
            "store": str(tmp_path / "store"),
            "listen": "127.0.0.1:0",
            "rules": [str(tmp_path / "rules.yaml")],
            "outputs": str(tmp_path / "outputs.yaml"),
        },
    )
    server = BackgroundServer(config)
    with pytest.raises(Exception, match=r"outputs.yaml:4: webhook.rate: 'fast' is not a rate"):
        server.start()


THRESHOLD_RULES = """\
- rule: Repeated forbidden requests
  desc: One user was refused three times within five minutes
  condition: ka.response.code = 403
  threshold: {count: 3, window: 5m, group_by: [ka.user.name]}
  output: Repeated forbidden requests (user=%ka.user.name)
  priority: WARNING
  source: k8s_audit
  mitre: [T1613]
"""


def forbidden_event(number: int) -> dict[str, Any]:
    event = audit_event(number, prefix="f")
    event["user"] = {"username": "prober", "groups": ["system:authenticated"]}
    event["responseStatus"] = {"metadata": {}, "code": 403}
    return event


def test_stateful_rules_resume_after_a_restart_of_serve(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(THRESHOLD_RULES)
    flags = {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0", "rules": [str(tmp_path / "rules.yaml")]}
    headers = {"content-type": "application/json"}
    for batch in ([forbidden_event(1), forbidden_event(2)], [forbidden_event(3)]):
        server = BackgroundServer(build_config({}, flags))
        url = server.start()
        try:
            assert httpx.post(f"{url}/audit/prod", content=event_list(batch), headers=headers).status_code == 200
        finally:
            server.stop()
    assert list((tmp_path / "store" / "checkpoints").glob("detect-state-*.ckpt"))
    store = Store.open(tmp_path / "store", read_only=True)
    try:
        rows = store.query_connection().execute("select rule, audit_id, mitre from alerts").fetchall()
    finally:
        store.close()
    # the third refusal came after the restart: only the restored count makes it the third
    assert rows == [("Repeated forbidden requests", forbidden_event(3)["auditID"], ["T1613"])]


def test_a_partly_duplicate_batch_detects_only_its_new_events(tmp_path: Path) -> None:
    detector = Counting()
    detection = Detection(detector, AlertLog(tmp_path))
    detection.start()
    store = Store.open(tmp_path / "store", StoreOptions(background_seal=False))
    store.on_durable = detection.submit
    try:
        assert store.append("prod", events(2)).accepted == 2
        assert store.append("prod", events(3)).accepted == 1  # a retry with one event more
        assert store.append("prod", events(3)).accepted == 0  # a plain retry: nothing new, nothing detected
        assert store.append("edge", events(1)).accepted == 1  # the same auditID in another cluster is new
        assert detection.drain(10)
    finally:
        detection.close()
        store.close()
    assert detector.seen == 4


def test_config_file_rules_and_outputs_are_relative_to_the_file(tmp_path: Path) -> None:
    from kubetrail.serve.config import ServeConfigError, load_config_file

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "outputs.yaml").write_text("outputs: []\n")
    (tmp_path / "conf" / "serve.yaml").write_text(
        "store: data\nrules: [builtin, rules/extra.yaml]\noutputs: outputs.yaml\n"
    )
    config = build_config(load_config_file(tmp_path / "conf" / "serve.yaml"), {})
    assert config.rules == ("builtin", str(tmp_path / "conf" / "rules" / "extra.yaml"))
    assert config.outputs == tmp_path / "conf" / "outputs.yaml"
    off = build_config({"store": str(tmp_path), "rules": []}, {})
    assert off.rules == ()
    with pytest.raises(ServeConfigError, match="outputs"):
        build_config({"store": str(tmp_path), "outputs": str(tmp_path / "absent.yaml")}, {})


def test_an_empty_rules_list_turns_detection_off(tmp_path: Path) -> None:
    from kubetrail.serve.app import ServeApp

    app = ServeApp(build_config({"store": str(tmp_path / "store"), "rules": []}, {}))
    app.open()
    try:
        assert app.detection is None
        assert "kubetrail_detection_events_total" not in app.metrics.exposition().decode()
    finally:
        app.close()


def test_events_recovered_from_the_wal_after_a_crash_are_detected_once(tmp_path: Path) -> None:
    from kubetrail.pipeline.detection import build_engine
    from kubetrail.serve.app import ServeApp

    (tmp_path / "rules.yaml").write_text(RULES)
    store_dir = tmp_path / "store"
    raws = [json.dumps(event).encode() for event in (exec_event(1), audit_event(2), exec_event(3), exec_event(4))]
    store = Store.open(store_dir)
    store.append("prod", [decode_event(raw) for raw in raws], raws)
    # before the crash, detection had got as far as event 1 and stored its alert
    engine = build_engine([tmp_path / "rules.yaml"])
    AlertLog(store_dir).append(engine.detect(EventContext(decode_event(raws[0]), "prod", raws[0])))
    store.close(seal=False)  # what a kill -9 leaves: the events only in the WAL

    app = ServeApp(build_config({"store": str(store_dir), "rules": [str(tmp_path / "rules.yaml")]}, {}))
    app.open()
    try:
        assert app.detection is not None
        assert app.detection.drain(10)
        assert app.detection.stats.replayed_events == 4
    finally:
        app.close()
    ids = [row[4] for row in alert_rows(store_dir)]
    assert sorted(ids) == sorted([exec_event(1)["auditID"], exec_event(3)["auditID"], exec_event(4)["auditID"]])
