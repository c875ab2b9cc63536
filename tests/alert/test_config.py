from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetrail.alert.config import OutputConfigError, load_outputs, parse_outputs
from kubetrail.alert.outputs import JsonlFileOutput, SlackOutput, StdoutOutput, SyslogOutput, WebhookOutput
from kubetrail.detect.priority import Priority
from tests.alert.helpers import make_alert


def test_builds_every_output_with_its_filter_and_limit(tmp_path: Path) -> None:
    text = f"""
outputs:
  - type: stdout
    format: text
  - type: file
    path: {tmp_path}/alerts.jsonl
    fsync: 2s
    min_priority: warning
  - type: webhook
    url: http://127.0.0.1:9/hook
    headers: {{Authorization: "Bearer ${{KT_TEST_TOKEN}}"}}
    timeout: 500ms
    retries: 5
    rate: 10/s
    burst: 30
  - type: slack
    url: https://hooks.slack.com/services/T/B/X
    min_priority: critical
  - type: syslog
    address: 127.0.0.1:514
    protocol: tcp
    facility: local3
  - type: webhook
    url: http://127.0.0.1:9/other
"""
    import os

    os.environ["KT_TEST_TOKEN"] = "tok"
    try:
        routes = [build() for build in parse_outputs(text, "outputs.yaml")]
    finally:
        del os.environ["KT_TEST_TOKEN"]
    try:
        kinds = [type(route.output) for route in routes]
        assert kinds == [StdoutOutput, JsonlFileOutput, WebhookOutput, SlackOutput, SyslogOutput, WebhookOutput]
        assert [route.output.name for route in routes] == ["stdout", "file", "webhook", "slack", "syslog", "webhook#2"]
        assert [route.min_priority for route in routes][:4] == [
            Priority.DEBUG,
            Priority.WARNING,
            Priority.DEBUG,
            Priority.CRITICAL,
        ]
        webhook = routes[2]
        assert webhook.bucket is not None and webhook.bucket.capacity == 30 and webhook.bucket.per_second == 10
        assert isinstance(webhook.output, WebhookOutput)
        assert webhook.output.retries == 5
        assert webhook.output._client.headers["authorization"] == "Bearer tok"
        assert webhook.output._client.timeout.read == 0.5
        syslog = routes[4].output
        assert isinstance(syslog, SyslogOutput) and syslog.facility == 19 and syslog.protocol == "tcp"
    finally:
        for route in routes:
            route.output.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("outputs:\n  - type: pager\n", "outputs.yaml:2: pager.type: unknown output type 'pager'"),
        ("outputs:\n  - path: x\n", "outputs.yaml:2: output: `type` is required"),
        ("outputs:\n  - type: file\n", "outputs.yaml:2: file.path: `path` is required"),
        (
            "outputs:\n  - type: file\n    path: x\n    colour: red\n",
            "outputs.yaml:4: file.colour: unknown key 'colour'",
        ),
        (
            "outputs:\n  - type: stdout\n    min_priority: loud\n",
            "outputs.yaml:3: stdout.min_priority: unknown priority",
        ),
        (
            "outputs:\n  - type: stdout\n    rate: 10 per second\n",
            "outputs.yaml:3: stdout.rate: '10 per second' is not",
        ),
        ("outputs:\n  - type: stdout\n    burst: 3\n", "outputs.yaml:3: stdout.burst: `burst` needs a `rate`"),
        ("outputs:\n  - type: syslog\n    address: nowhere\n", "outputs.yaml:3: syslog.address: `address` must be"),
        ("outputs:\n  - type: syslog\n    address: h:1\n    protocol: tls\n", "outputs.yaml:4: syslog.protocol: 'tls'"),
        (
            "outputs:\n  - type: webhook\n    url: ${KT_UNSET_VAR}\n",
            "outputs.yaml:3: webhook.url: environment variable",
        ),
        (
            "outputs:\n  - type: webhook\n    url: x\n    timeout: soon\n",
            "outputs.yaml:4: webhook.timeout: 'soon' is not",
        ),
        ("outputs:\n  - type: webhook\n    url: x\n    retries: -1\n", "outputs.yaml:4: webhook.retries: -1 is not"),
        ("outputs: {type: stdout}\n", "outputs.yaml:1: `outputs` must be a list"),
        ("output:\n  - type: stdout\n", "outputs.yaml:1: unknown key 'output'"),
        ("outputs:\n  - stdout\n", "outputs.yaml:2: each output is a mapping"),
        ("outputs:\n  - type: [stdout\n", "outputs.yaml:3: not valid YAML"),
    ],
)
def test_errors_name_the_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(OutputConfigError) as caught:
        for build in parse_outputs(text, "outputs.yaml"):
            build().output.close()
    assert str(caught.value).startswith(expected)


def test_a_bad_url_is_reported_at_its_entry() -> None:
    with pytest.raises(OutputConfigError, match=r"^outputs.yaml:2: webhook: the url must start with http"):
        parse_outputs("outputs:\n  - type: webhook\n    url: ftp://x\n", "outputs.yaml")[0]()


def test_an_empty_file_means_no_outputs(tmp_path: Path) -> None:
    (tmp_path / "o.yaml").write_text("outputs:\n")
    assert len(load_outputs(tmp_path / "o.yaml")) == 0
    (tmp_path / "o.yaml").write_text("")
    assert len(load_outputs(tmp_path / "o.yaml")) == 0


def test_load_outputs_delivers_through_the_filters(tmp_path: Path) -> None:
    target = tmp_path / "alerts.jsonl"
    (tmp_path / "o.yaml").write_text(f"outputs:\n  - type: file\n    path: {target}\n    min_priority: error\n")
    outputs = load_outputs(tmp_path / "o.yaml")
    outputs.send(
        [make_alert(priority=Priority.NOTICE, audit_id="low"), make_alert(priority=Priority.ALERT, audit_id="hi")]
    )
    outputs.close()
    assert [json.loads(line)["auditID"] for line in target.read_text().splitlines()] == ["hi"]


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(OutputConfigError, match="cannot read the outputs file"):
        load_outputs(tmp_path / "absent.yaml")
