"""With `--redact`, no planted secret reaches any byte serve writes or any page it shows.

Each kind of secret is planted in each place an event can carry it (a Secret's data, a request body, a response
body, the annotations, the request URI) and in a record that is refused (so it goes to the dead letters).
Then every file under the store (WAL, Parquet read back through DuckDB, dead letters, alerts), the alert output
file and every UI page of those events are searched for each secret value.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import httpx

from kubetrail.serve.config import build_config
from kubetrail.serve.server import BackgroundServer
from tests.serve.helpers import audit_event

JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InBsYW50ZWQifQ."
    "eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6cGxhbnRlZCJ9.cGxhbnRlZHNpZ25hdHVyZTEyMzQ1Njc4"
)
BEARER = "plantedBearerValue0123456789abcdef"
AWS_KEY = "AKIAPLANTEDKEY2345ZZ"
GITHUB = "ghp_" + "P" * 36
SLACK = "xoxb-planted-1234567890-abcdef"
URL_PASSWORD = "plantedUrlPassw0rd"
PRIVATE_KEY_BODY = "MIIBOgIBAAJBAKplantedPrivateKeyMaterial0123456789"
SECRET_VALUE = "planted-database-password-value"
SECRETS = [JWT, BEARER, AWS_KEY, GITHUB, SLACK, URL_PASSWORD, PRIVATE_KEY_BODY, SECRET_VALUE]
TEXT = (
    f"token {JWT} auth Bearer {BEARER} key {AWS_KEY} gh {GITHUB} slack {SLACK} "
    f"db postgres://admin:{URL_PASSWORD}@db:5432/x "
    f"-----BEGIN RSA PRIVATE KEY-----{PRIVATE_KEY_BODY}-----END RSA PRIVATE KEY-----"
)
RULES = """- rule: Planted
  desc: every event, printing the fields that carry secrets
  condition: ka.verb exists
  output: "%ka.uri %jevt.value[/annotations/note] %jevt.value[/requestObject/data/password]"
  priority: WARNING
  source: k8s_audit
"""


def events() -> list[dict[str, Any]]:
    secret = audit_event(1, prefix="planted") | {
        "level": "RequestResponse",
        "verb": "create",
        "requestURI": "/api/v1/namespaces/default/secrets",
        "objectRef": {"resource": "secrets", "namespace": "default", "name": "db", "apiVersion": "v1"},
        "requestObject": {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "db"},
            "data": {"password": base64.b64encode(SECRET_VALUE.encode()).decode()},
            "stringData": {"note": TEXT},
        },
    }
    response = audit_event(2, prefix="planted") | {
        "level": "RequestResponse",
        "responseObject": {"kind": "ConfigMap", "data": {"app.conf": TEXT}},
    }
    annotated = audit_event(3, prefix="planted") | {"annotations": {"note": TEXT}}
    uri = audit_event(4, prefix="planted") | {
        "requestURI": f"/api/v1/namespaces/default/pods?access_token={JWT}&password={URL_PASSWORD}"
    }
    return [secret, response, annotated, uri]


def refused() -> bytes:
    """A record that is not a valid event (no level) but carries secrets: it goes to the dead letters."""
    record = {key: value for key, value in events()[0].items() if key != "level"}
    record["auditID"] = "planted-refused"
    return json.dumps(record).encode()


def test_no_planted_secret_is_written_or_shown(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    outputs = tmp_path / "alerts.jsonl"
    (tmp_path / "outputs.yaml").write_text(f"outputs:\n- name: file\n  type: file\n  path: {outputs}\n")
    store = tmp_path / "store"
    flags = {
        "store": str(store),
        "listen": "127.0.0.1:0",
        "rules": [str(tmp_path / "rules.yaml")],
        "outputs": str(tmp_path / "outputs.yaml"),
        "redact": True,
    }
    server = BackgroundServer(build_config({}, flags))
    url = server.start()
    pages: list[str] = []
    try:
        items = b",".join([*(json.dumps(event).encode() for event in events()), refused()])
        body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + items + b"]}"
        with httpx.Client(timeout=30) as client:
            answer = client.post(f"{url}/audit/prod", content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == 4 and answer.json()["rejected"] == 1
            assert server.app.detection is not None and server.app.detection.drain(30)
            for event in events():
                page = client.get(f"{url}/ui/event", params={"id": event["auditID"]})
                assert page.status_code == 200 and "REDACTED:sha256:" in page.text
                pages.append(page.text)
            for query in ("verb=create", "resource=secrets", "id~planted*"):
                pages.append(client.get(f"{url}/ui/search", params={"q": query}).text)
            pages.append(client.get(f"{url}/ui/alerts").text)
    finally:
        server.stop()
    assert server.app.detection is not None and server.app.detection.stats.alerts == 4
    written = [path for path in store.rglob("*") if path.is_file()] + [outputs]
    assert any(path.suffix == ".parquet" for path in written)
    stored_json = duckdb.sql(
        f"SELECT string_agg(event, '\n') FROM read_parquet('{store}/data/**/*.parquet')"
    ).fetchall()
    texts = {str(path): path.read_bytes().decode("utf-8", "replace") for path in written if path.suffix != ".parquet"}
    texts["parquet events"] = str(stored_json[0][0])
    texts.update({f"page {index}": page for index, page in enumerate(pages)})
    for secret in SECRETS:
        for where, text in texts.items():
            assert secret not in text, f"{secret[:12]}… found in {where}"
    assert "REDACTED:sha256:" in texts["parquet events"]
    letters = next(text for where, text in texts.items() if "deadletter" in where)
    assert "planted-refused" in letters and re.search(r"REDACTED:sha256:[0-9a-f]+", letters)
