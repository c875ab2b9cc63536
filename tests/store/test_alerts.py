from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import duckdb

from kubetrail.detect.alert import Alert
from kubetrail.detect.priority import Priority
from kubetrail.store import Store
from kubetrail.store.alerts import AlertLog, alert_files, register_alerts_view

TIME_NS = 1540476552_581541123  # 2018-10-25T14:09:12.581541123Z


def alert(audit_id: str, priority: Priority = Priority.WARNING, cluster: str | None = "prod") -> Alert:
    return Alert(
        rule="Create Privileged Pod",
        priority=priority,
        source="k8s_audit",
        time_ns=TIME_NS,
        message="Pod started with privileged container (user=bob pod=p ns=default)",
        output_fields={"ka.user.name": "bob", "ka.req.pod.containers.privileged": ["true"], "ka.target.name": None},
        tags=("k8s",),
        audit_id=audit_id,
        cluster=cluster,
        mitre=("T1610", "T1611"),
        threat_matrix=("MS-TA9013",),
        outcome="succeeded",
    )


def connection(store_dir: Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    register_alerts_view(conn, store_dir)
    return conn


def test_the_view_has_the_contract_columns_even_when_empty(tmp_path: Path) -> None:
    described = connection(tmp_path).execute("describe alerts").fetchall()
    assert [(row[0], row[1]) for row in described] == [
        ("time", "TIMESTAMP"),
        ("rule", "VARCHAR"),
        ("priority", "VARCHAR"),
        ("priority_rank", "INTEGER"),
        ("cluster", "VARCHAR"),
        ("audit_id", "VARCHAR"),
        ("message", "VARCHAR"),
        ("output_fields", "JSON"),
        ("tags", "VARCHAR[]"),
        ("mitre", "VARCHAR[]"),
        ("outcome", "VARCHAR"),
    ]
    assert connection(tmp_path).execute("select count(*) from alerts").fetchone() == (0,)
    AlertLog(tmp_path).close()  # a log with no alerts yet
    assert connection(tmp_path).execute("select count(*) from alerts").fetchone() == (0,)


def test_appended_alerts_are_queryable_with_their_types(tmp_path: Path) -> None:
    log = AlertLog(tmp_path)
    log.append([alert("a1"), alert("a2", Priority.CRITICAL, cluster=None)])
    log.close()
    (path,) = alert_files(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rows = (
        connection(tmp_path)
        .execute(
            "select time, priority, priority_rank, cluster, audit_id, output_fields->>'ka.user.name', "
            "json_extract(output_fields, '$.\"ka.req.pod.containers.privileged\"[0]')::VARCHAR, tags, mitre "
            "from alerts order by priority_rank"
        )
        .fetchall()
    )
    moment = dt.datetime(2018, 10, 25, 14, 9, 12, 581541)
    assert rows == [
        (moment, "Critical", 2, None, "a2", "bob", '"true"', ["k8s"], ["T1610", "T1611"]),
        (moment, "Warning", 4, "prod", "a1", "bob", '"true"', ["k8s"], ["T1610", "T1611"]),
    ]


def test_the_outcome_column_is_null_for_alerts_written_before_it_existed(tmp_path: Path) -> None:
    log = AlertLog(tmp_path)
    log.append([alert("new")])
    log.close()
    (path,) = alert_files(tmp_path)
    old = json.loads(path.read_text().splitlines()[0])
    del old["outcome"]
    old["audit_id"] = "old"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(old) + "\n")
    rows = connection(tmp_path).execute("select audit_id, outcome from alerts order by audit_id").fetchall()
    assert rows == [("new", "succeeded"), ("old", None)]


def test_a_torn_last_line_is_cut_when_the_log_reopens(tmp_path: Path) -> None:
    log = AlertLog(tmp_path)
    log.append([alert("a1")])
    log.close()
    (path,) = alert_files(tmp_path)
    with open(path, "ab") as handle:
        handle.write(b'{"time":"2018-10-25 14:09:12","rule":"Cut')
    assert connection(tmp_path).execute("select audit_id from alerts").fetchall() == [("a1",)]
    log = AlertLog(tmp_path)
    log.append([alert("a2")])
    log.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["audit_id"] for line in lines] == ["a1", "a2"]


def test_the_store_query_connection_has_the_alerts_view(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    try:
        AlertLog(tmp_path / "store").append([alert("s1")])
        conn = store.query_connection()
        assert conn.execute("select audit_id, rule from alerts").fetchall() == [("s1", "Create Privileged Pod")]
        assert conn.execute("select count(*) from events").fetchone() == (0,)
    finally:
        store.close()
