"""serve's `--redact` (secrets replaced before events are stored) and the stateful key limit (`max_keys`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubetrail.secrets import REDACTED_PREFIX
from kubetrail.serve.config import ServeConfigError, build_config
from kubetrail.serve.server import BackgroundServer
from kubetrail.store import Store
from tests.serve.helpers import audit_event, event_list, serving

PASSWORD = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk"  # base64 of a password, as Secret `data` holds it
HEADERS = {"content-type": "application/json"}


def secret_create(number: int) -> dict[str, Any]:
    """A Secret create at RequestResponse level: the request body carries the value."""
    event = audit_event(number, prefix="s")
    event.update(
        level="RequestResponse",
        verb="create",
        requestURI="/api/v1/namespaces/app/secrets",
        objectRef={"resource": "secrets", "namespace": "app", "name": "db", "apiVersion": "v1"},
        requestObject={
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "db", "namespace": "app"},
            "type": "Opaque",
            "data": {"password": PASSWORD},
        },
        responseStatus={"metadata": {}, "code": 201},
    )
    return event


def stored_events(store_dir: Path) -> dict[str, str]:
    """auditID → the stored JSON text of each event."""
    store = Store.open(store_dir, read_only=True)
    try:
        rows = store.query_connection().execute("select audit_id, event from events").fetchall()
    finally:
        store.close()
    return {str(audit_id): str(text) for audit_id, text in rows}


def _post_and_read(tmp_path: Path, *flags: str) -> tuple[dict[str, str], str]:
    store = tmp_path / "store"
    config = tmp_path / "serve.yaml"
    config.write_text("rules: []\n")  # detection off: this is about what is stored
    with serving("--config", str(config), "--store", str(store), "--listen", "127.0.0.1:0", *flags) as server:
        body = event_list([secret_create(1), audit_event(2)])
        assert httpx.post(f"{server.url}/audit/prod", content=body, headers=HEADERS).status_code == 200
        metrics = httpx.get(f"{server.url}/metrics").text
        assert server.stop() == 0
    return stored_events(store), metrics


def test_redact_stores_the_secret_value_replaced_and_everything_else_as_posted(tmp_path: Path) -> None:
    stored, _ = _post_and_read(tmp_path, "--redact")
    secret, plain = secret_create(1), audit_event(2)
    text = stored[secret["auditID"]]
    assert PASSWORD not in text
    document = json.loads(text)
    replacement = document["requestObject"]["data"]["password"]
    assert replacement.startswith(REDACTED_PREFIX)
    # only the value changed: put it back and the event is the posted one, field for field
    document["requestObject"]["data"]["password"] = PASSWORD
    assert document == secret
    # and byte for byte: the stored text is the posted item with the value's characters replaced
    assert text == json.dumps(secret).replace(PASSWORD, replacement)
    assert stored[plain["auditID"]] == json.dumps(plain)


def test_without_redact_the_secret_is_stored_as_sent(tmp_path: Path) -> None:
    stored, _ = _post_and_read(tmp_path)
    assert json.loads(stored[secret_create(1)["auditID"]])["requestObject"]["data"]["password"] == PASSWORD


THRESHOLD_RULES = """\
- rule: Repeated deletes
  desc: one user deletes twice within ten minutes
  condition: ka.verb = delete
  threshold: {count: 2, window: 10m, group_by: [ka.user.name]}
  output: Repeated deletes (user=%ka.user.name)
  priority: WARNING
  source: k8s_audit
"""


def delete_by(number: int, user: str) -> dict[str, Any]:
    event = audit_event(number, prefix="d")
    event.update(verb="delete", user={"username": user, "groups": ["system:authenticated"]})
    return event


def _alternating_deletes(tmp_path: Path, file_values: dict[str, Any]) -> tuple[str, int]:
    """Users a, b, a, b each delete twice; returns the evictions metric line and how many alerts were stored."""
    (tmp_path / "rules.yaml").write_text(THRESHOLD_RULES)
    flags = {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0", "rules": [str(tmp_path / "rules.yaml")]}
    server = BackgroundServer(build_config(file_values, flags))
    url = server.start()
    try:
        batch = [delete_by(number, user) for number, user in enumerate("abab", start=1)]
        assert httpx.post(f"{url}/audit/prod", content=event_list(batch), headers=HEADERS).status_code == 200
        assert server.app is not None and server.app.detection is not None
        assert server.app.detection.drain()
        metrics = httpx.get(f"{url}/metrics").text
    finally:
        server.stop()
    line = next(line for line in metrics.splitlines() if line.startswith("kubetrail_detection_state_evictions_total"))
    store = Store.open(tmp_path / "store", read_only=True)
    try:
        (alerts,) = store.query_connection().execute("select count(*) from alerts").fetchone() or (0,)
    finally:
        store.close()
    return line, int(alerts)


def test_a_one_key_limit_evicts_each_user_before_their_second_delete(tmp_path: Path) -> None:
    line, alerts = _alternating_deletes(tmp_path, {"detection": {"max_keys": 1}})
    assert line == "kubetrail_detection_state_evictions_total 3"
    assert alerts == 0


def test_with_room_for_both_users_both_reach_the_threshold(tmp_path: Path) -> None:
    line, alerts = _alternating_deletes(tmp_path, {})
    assert line == "kubetrail_detection_state_evictions_total 0"
    assert alerts == 2


def test_max_keys_flag_wins_over_the_file() -> None:
    config = build_config({"detection": {"max_keys": 5}}, {"store": "s", "max-keys": 7})
    assert config.max_keys == 7
    assert build_config({"detection": {"max_keys": 5}}, {"store": "s"}).max_keys == 5
    assert build_config({}, {"store": "s"}).max_keys is None
    assert build_config({"redact": True}, {"store": "s"}).redact is True


@pytest.mark.parametrize(
    ("values", "field"),
    [({"detection": {"max_keys": 0}}, "detection.max_keys"), ({"detection": {"max_key": 9}}, "detection")],
)
def test_bad_detection_settings_name_their_key(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ServeConfigError) as caught:
        build_config(values, {"store": "s"})
    assert caught.value.field == field
