"""Planted secrets are all found (path, kind, hash) and redacted byte-exactly; benign traffic gives nothing."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.secrets import REDACTED_PREFIX, redact_file, scan_file, scan_text

PEM_BODY = "\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dV\n"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SLACK = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
LAST_APPLIED = (
    json.dumps(
        {"apiVersion": "v1", "data": {"key": "dmFsdWUtb2YtdGhlLWtleQ=="}, "kind": "Secret", "metadata": {"name": "s"}},
        separators=(",", ":"),
    )
    + "\n"
)

# (objectRef, requestURI, requestObject, responseObject, [(path, planted value, kind)])
Plant = tuple[dict[str, str], str, Any, Any, list[tuple[tuple[str | int, ...], str, str]]]
PLANTS: list[Plant] = [
    (
        {"resource": "secrets", "namespace": "app", "apiVersion": "v1"},
        "/api/v1/namespaces/app/secrets",
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "db"},
            "data": {"password": "c2VjcmV0LXBhc3N3b3Jk"},
            "stringData": {"api-token": "tok-12345-abc"},
        },
        None,
        [
            (("requestObject", "data", "password"), "c2VjcmV0LXBhc3N3b3Jk", "secret-data"),
            (("requestObject", "stringData", "api-token"), "tok-12345-abc", "secret-string-data"),
        ],
    ),
    (
        {"resource": "secrets", "namespace": "app", "apiVersion": "v1"},
        "/api/v1/namespaces/app/secrets?limit=500",
        None,
        {
            "kind": "SecretList",
            "apiVersion": "v1",
            "metadata": {},
            "items": [
                {
                    "metadata": {"name": "tls", "managedFields": [{"fieldsV1": {"f:data": {"f:tls.key": {}}}}]},
                    "data": {"tls.key": "LS0tLS1CRUdJTiBQUklWQVRF"},
                    "type": "kubernetes.io/tls",
                }
            ],
        },
        [(("responseObject", "items", 0, "data", "tls.key"), "LS0tLS1CRUdJTiBQUklWQVRF", "secret-data")],
    ),
    (
        {"resource": "secrets", "namespace": "app", "name": "s", "apiVersion": "v1"},
        "/api/v1/namespaces/app/secrets/s?fieldManager=kubectl-client-side-apply",
        {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED}}},
        None,
        [
            (
                ("requestObject", "metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"),
                "dmFsdWUtb2YtdGhlLWtleQ==",
                "secret-in-last-applied",
            ),
        ],
    ),
    (
        {"resource": "configmaps", "namespace": "app", "apiVersion": "v1"},
        "/api/v1/namespaces/app/configmaps",
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "settings"},
            "data": {
                "DB_PASSWORD": "hunter2hunter2",
                "server.key": f"-----BEGIN PRIVATE KEY-----{PEM_BODY}-----END PRIVATE KEY-----\n",
                "credentials": f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
                "notify.yaml": f"slack:\n  token: {SLACK}\n  webhook: https://hooks.slack.com/services/T0001/B0001/abcdefXYZ\n",
                "dsn": "postgres://app:s3cr3tpass@db:5432/app?sslmode=require",
                "log-level": "debug",
            },
        },
        None,
        [
            (("requestObject", "data", "DB_PASSWORD"), "hunter2hunter2", "credential-in-configmap"),
            (("requestObject", "data", "server.key"), PEM_BODY, "private-key"),
            (("requestObject", "data", "credentials"), AWS_ID, "aws-access-key-id"),
            (("requestObject", "data", "credentials"), AWS_SECRET, "aws-secret-access-key"),
            (("requestObject", "data", "notify.yaml"), SLACK, "slack-token"),
            (("requestObject", "data", "notify.yaml"), "T0001/B0001/abcdefXYZ", "slack-webhook"),
            (("requestObject", "data", "dsn"), "s3cr3tpass", "url-password"),
        ],
    ),
    (
        {"resource": "pods", "namespace": "app", "apiVersion": "v1"},
        "/api/v1/namespaces/app/pods",
        {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "web"},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "web:1",
                        "args": ["--github-token-file=/dev/null", f"--gh={GITHUB}"],
                        "env": [
                            {"name": "DB_PASSWORD", "value": "plainvalue99"},
                            {"name": "JAVA_OPTS", "value": "-Xmx1g -Dpassword=Tr0ub4dor&3"},
                            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "db", "key": "token"}}},
                        ],
                        "volumeMounts": [
                            {"name": "token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
                        ],
                    }
                ]
            },
        },
        None,
        [
            (("requestObject", "spec", "containers", 0, "args", 1), GITHUB, "github-token"),
            (("requestObject", "spec", "containers", 0, "env", 0, "value"), "plainvalue99", "credential-in-env"),
            (("requestObject", "spec", "containers", 0, "env", 1, "value"), "Tr0ub4dor", "password-assignment"),
        ],
    ),
    (
        {"resource": "widgets", "namespace": "app", "name": "w", "apiGroup": "example.com", "apiVersion": "v1"},
        "/apis/example.com/v1/namespaces/app/widgets/w?access_token=abcdEFGH1234&watch=true",
        None,
        {
            "kind": "Widget",
            "apiVersion": "example.com/v1",
            "metadata": {
                "name": "w",
                "annotations": {
                    "example.com/cached-jwt": JWT,
                    "example.com/upstream": "Authorization: Bearer Zm9vYmFyYmF6cXV4cXV1eA",
                },
            },
        },
        [
            (("requestURI",), "abcdEFGH1234", "credential-in-uri"),
            (("responseObject", "metadata", "annotations", "example.com/cached-jwt"), JWT, "jwt"),
            (
                ("responseObject", "metadata", "annotations", "example.com/upstream"),
                "Zm9vYmFyYmF6cXV4cXV1eA",
                "bearer-token",
            ),
        ],
    ),
    (
        {"resource": "tokenreviews", "apiGroup": "authentication.k8s.io", "apiVersion": "v1"},
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "spec": {"token": "opaque-bearer-token-0001"},
        },
        None,
        [(("requestObject", "spec", "token"), "opaque-bearer-token-0001", "bearer-token")],
    ),
]


def _go_json(value: Any) -> str:
    """JSON as the apiserver writes it: compact, with <, > and & escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _path_text(path: tuple[str | int, ...]) -> str:
    from kubetrail.secrets.jsontext import format_path

    return format_path(path)


def _get(value: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _set(value: Any, path: tuple[str | int, ...], new: Any) -> None:
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = new


@pytest.fixture(scope="module")
def benign_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated log under the recommended policy (Secrets, ConfigMaps and tokens at Metadata)."""
    path = tmp_path_factory.mktemp("secrets") / "benign.log"
    policy = Path(__file__).resolve().parents[2] / "src" / "kubetrail" / "policy" / "presets" / "recommended.yaml"
    command = ["generate", "--duration", "120", "--seed", "3", "--scenario", "all", "--policy", str(policy)]
    result = CliRunner().invoke(cli, [*command, "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def planted(benign_log: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, list[Any]]]:
    """The benign log with every 50th line replaced by an event carrying planted secrets."""
    lines = benign_log.read_bytes().split(b"\n")
    plants: dict[int, list[Any]] = {}
    for index, (ref, uri, request, response, expected) in enumerate(PLANTS):
        number = 50 * (index + 1)
        event = json.loads(lines[number - 1])
        event.update(objectRef=ref, requestURI=uri, level="RequestResponse", verb="create")
        event.pop("requestObject", None)
        event.pop("responseObject", None)
        if request is not None:
            event["requestObject"] = request
        if response is not None:
            event["responseObject"] = response
        lines[number - 1] = _go_json(event).encode()
        plants[number] = [event, expected]
    path = tmp_path_factory.mktemp("secrets") / "planted.log"
    path.write_bytes(b"\n".join(lines))
    return path, plants


def test_benign_log_has_no_findings(benign_log: Path) -> None:
    assert list(scan_file(benign_log)) == []


def test_every_planted_secret_is_found_and_nothing_else(planted: tuple[Path, dict[int, list[Any]]]) -> None:
    path, plants = planted
    expected = {
        (number, event["auditID"], _path_text(where), kind, hashlib.sha256(value.encode()).hexdigest()[:12])
        for number, (event, items) in plants.items()
        for where, value, kind in items
    }
    assert len({kind for *_, kind, _ in expected}) >= 10
    found = {(item.line, item.audit_id, item.path, item.kind, item.sha256) for item in scan_file(path)}
    assert found == expected


def test_findings_never_carry_values(planted: tuple[Path, dict[int, list[Any]]]) -> None:
    path, plants = planted
    values = [value for _, items in plants.values() for _, value, _ in items]
    for finding in scan_file(path):
        text = json.dumps(finding.as_dict())
        assert not any(value.strip() in text for value in values)


def test_redacted_copy_keeps_every_other_byte(planted: tuple[Path, dict[int, list[Any]]], tmp_path: Path) -> None:
    path, plants = planted
    out = tmp_path / "redacted.log"
    redacted = redact_file(path, out)
    assert len(redacted) == sum(len(items) for _, items in plants.values())
    before, after = path.read_bytes().split(b"\n"), out.read_bytes().split(b"\n")
    assert len(before) == len(after)
    for number, (old, new) in enumerate(zip(before, after, strict=True), start=1):
        if number not in plants:
            assert old == new
            continue
        event, items = plants[number]
        wanted = copy.deepcopy(event)
        for where, value, _ in items:
            digest = hashlib.sha256(value.encode()).hexdigest()[:12]
            current = _get(wanted, where)
            assert value in current
            _set(wanted, where, current.replace(value, REDACTED_PREFIX + digest, 1))
        assert json.loads(new) == wanted
    assert list(scan_file(out)) == []


def test_default_generated_traffic_findings_are_the_secrets_it_carries(tmp_path: Path) -> None:
    """Without a policy the generator records Secret bodies and token reviews at RequestResponse: all findings."""
    path = tmp_path / "full.log"
    command = ["generate", "--duration", "60", "--seed", "9", "-o", str(path)]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    expected = 0
    for line in path.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        for name in ("requestObject", "responseObject"):
            body = event.get(name) or {}
            if ref.get("resource") == "secrets":
                objects = body.get("items", [body]) if isinstance(body, dict) else []
                expected += sum(1 for item in objects for value in (item.get("data") or {}).values() if value)
            if ref.get("resource") == "tokenreviews" and (body.get("spec") or {}).get("token"):
                expected += 1
            if (
                ref.get("subresource") == "token"
                and name == "responseObject"
                and (body.get("status") or {}).get("token")
            ):
                expected += 1
    found = list(scan_file(path))
    assert expected > 0
    assert len(found) == expected
    assert {item.kind for item in found} <= {"secret-data", "bearer-token", "service-account-token"}


def test_one_event_json_without_line_numbers() -> None:
    text = '{"auditID":"a","requestURI":"/x?token=abcdef123","verb":"get"}'
    findings, replacements = scan_text(text, "s", None)
    assert [(item.line, item.path, item.kind) for item in findings] == [(None, "requestURI", "credential-in-uri")]
    assert text[replacements[0].start : replacements[0].end] == "abcdef123"


def test_pretty_event_list_document(tmp_path: Path) -> None:
    """A whole-document EventList (as a webhook batch is saved): line numbers inside it, exact redaction."""
    secret = "dG9wLXNlY3JldA=="
    event = {
        "kind": "Event",
        "auditID": "e1",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/a/secrets/s",
        "verb": "get",
        "user": {"username": "u"},
        "objectRef": {"resource": "secrets", "namespace": "a", "name": "s"},
        "responseObject": {"kind": "Secret", "data": {"k": secret}},
    }
    document = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [{**event, "auditID": "e0"}, event]}
    document["items"][0]["responseObject"] = {"kind": "Status"}
    path = tmp_path / "batch.json"
    text = json.dumps(document, indent=2)
    path.write_text(text)
    findings = list(scan_file(path))
    expected_line = text[: text.index(secret)].count("\n") + 1
    assert [(item.line, item.audit_id, item.path) for item in findings] == [
        (expected_line, "e1", "responseObject.data.k")
    ]
    out = tmp_path / "out.json"
    redact_file(path, out)
    digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
    assert out.read_text() == text.replace(secret, REDACTED_PREFIX + digest)
