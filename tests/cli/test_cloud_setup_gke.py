"""`kubetrail cloud-setup gke`: the printed script runs as written (sh, variables, command substitution) with the
real `gcloud` parsing every command; the Pub/Sub commands are carried out by Google's Pub/Sub emulator and the
others (Logging, IAM, Resource Manager, Service Usage) by a loopback stub that records the REST calls gcloud
makes. What the script builds then carries entries published as the sink would to the `gke-pubsub` source."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from kubetrail.cli.cloud_setup import cloud_setup_group
from kubetrail.cli.cloud_setup_gke import sink_filter
from tests.sources.servers import emulator_environment, pubsub_emulator

pytest.importorskip("google.cloud.pubsub_v1", reason="the gcp extra (google-cloud-pubsub) is not installed")

PROJECT = "demo-project"
NUMBER = "123456789012"
WRITER = f"serviceAccount:service-{NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"


class GoogleStub(http.server.ThreadingHTTPServer):
    """Logging, IAM, Resource Manager and Service Usage as far as the script needs them, recording each call;
    Pub/Sub's IAM methods here, its other calls forwarded to the emulator."""

    def __init__(self, emulator: str) -> None:
        self.emulator = emulator
        self.calls: list[tuple[str, str, Any]] = []
        self.sinks: dict[str, Any] = {}
        self.accounts: set[str] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), StubHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class StubHandler(http.server.BaseHTTPRequestHandler):
    server: GoogleStub

    def _answer(self, status: int, document: Any) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else None
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.calls.append((self.command, path, body))
        if path.startswith("/v1/projects/") and ("/topics/" in path or "/subscriptions/" in path):
            if path.endswith(":getIamPolicy"):
                return self._answer(200, {"etag": "BwYAAA=="})
            if path.endswith(":setIamPolicy"):
                return self._answer(200, body["policy"])
            forwarded = httpx.request(self.command, f"http://{self.server.emulator}{self.path}", content=raw)
            return self._answer(forwarded.status_code, forwarded.json() if forwarded.content else {})
        if path.endswith("/services:batchEnable"):
            return self._answer(200, {"name": "operations/noop.DONE_OPERATION", "done": True, "response": {}})
        if path.startswith("/v1/operations/"):
            return self._answer(200, {"name": path[4:], "done": True, "response": {}})
        if path == f"/v2/projects/{PROJECT}/sinks" and self.command == "POST":
            sink = {**body, "writerIdentity": WRITER}
            self.server.sinks[body["name"]] = sink
            return self._answer(200, sink)
        if path.startswith(f"/v2/projects/{PROJECT}/sinks/"):
            return self._answer(200, self.server.sinks[path.rsplit("/", 1)[-1]])
        if path.startswith(f"/v1/projects/{PROJECT}/serviceAccounts"):
            email = path.rsplit("/", 1)[-1].split(":", 1)[0]
            if path.endswith(":getIamPolicy"):
                return self._answer(200, {"etag": "BwYAAA=="})
            if path.endswith(":setIamPolicy"):
                return self._answer(200, body["policy"])
            if self.command == "POST":
                email = f"{body['accountId']}@{PROJECT}.iam.gserviceaccount.com"
                self.server.accounts.add(email)
                return self._answer(200, {"email": email, "name": f"projects/{PROJECT}/serviceAccounts/{email}"})
            if email in self.server.accounts:
                return self._answer(200, {"email": email})
            return self._answer(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
        if path.endswith(f"/projects/{PROJECT}"):
            return self._answer(200, {"projectId": PROJECT, "projectNumber": NUMBER, "name": f"projects/{NUMBER}"})
        return self._answer(404, {"error": {"code": 404, "message": f"the stub has no {path}", "status": "NOT_FOUND"}})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def google(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoogleStub]:
    if shutil.which("gcloud") is None:
        pytest.skip("the gcloud CLI is not installed (Debian package google-cloud-cli from Google's repository)")
    with pubsub_emulator(tmp_path_factory.mktemp("emulator")) as host, emulator_environment(host):
        stub = GoogleStub(host)
        thread = threading.Thread(target=stub.serve_forever, daemon=True)
        thread.start()
        try:
            yield stub
        finally:
            stub.shutdown()


def script(*arguments: str) -> str:
    result = CliRunner().invoke(cloud_setup_group, ["gke", *arguments])
    assert result.exit_code == 0, result.output
    return result.output


def run_script(text: str, folder: Path, stub: GoogleStub) -> list[list[str]]:
    """Run the script with the real gcloud (behind a shim that logs each command line) against the stub."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    calls = folder / "calls.ndjson"
    shim = bin_dir / "gcloud"
    shim.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"os.execv({shutil.which('gcloud')!r}, ['gcloud', *sys.argv[1:]])\n"
    )
    shim.chmod(0o755)
    token = folder / "token"
    token.write_text("test-access-token\n")
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CLOUDSDK_CONFIG": str(folder / "gcloud-config"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
        **{
            f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}": stub.url
            for api in ("LOGGING", "IAM", "CLOUDRESOURCEMANAGER", "SERVICEUSAGE", "PUBSUB")
        },
    }
    done = subprocess.run(["sh", "-c", text], cwd=folder, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line)[:3] for line in calls.read_text().splitlines()]


def test_the_push_script_builds_a_sink_and_an_authenticated_push_subscription(
    google: GoogleStub, tmp_path: Path
) -> None:
    from google.cloud import pubsub_v1

    google.calls.clear()
    text = script("--cluster", "prod", "--project", PROJECT, "--url", "https://kt.example.com")
    commands = run_script(text, tmp_path, google)
    assert [command[:2] for command in commands] == [
        ["services", "enable"], ["pubsub", "topics"], ["logging", "sinks"], ["logging", "sinks"],
        ["pubsub", "topics"], ["iam", "service-accounts"], ["iam", "service-accounts"], ["projects", "describe"],
        ["iam", "service-accounts"], ["pubsub", "subscriptions"],
    ]  # fmt: skip
    (sink,) = [body for method, path, body in google.calls if path.endswith("/sinks") and method == "POST"]
    assert sink["filter"] == sink_filter("prod")
    assert sink["destination"] == f"pubsub.googleapis.com/projects/{PROJECT}/topics/kubetrail-audit-prod"
    policies = [(path, body["policy"]) for method, path, body in google.calls if path.endswith(":setIamPolicy")]
    topic_policy = next(policy for path, policy in policies if "/topics/" in path)
    assert {"role": "roles/pubsub.publisher", "members": [WRITER]} in topic_policy["bindings"]
    account = f"kubetrail-push@{PROJECT}.iam.gserviceaccount.com"
    token_policy = next(policy for path, policy in policies if account in path)
    agent = f"serviceAccount:service-{NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert {"role": "roles/iam.serviceAccountTokenCreator", "members": [agent]} in token_policy["bindings"]

    subscriber = pubsub_v1.SubscriberClient()
    made = subscriber.get_subscription(subscription=f"projects/{PROJECT}/subscriptions/kubetrail-prod")
    subscriber.close()
    assert made.push_config.push_endpoint == "https://kt.example.com/pubsub/prod"
    assert made.push_config.oidc_token.service_account_email == account
    assert made.push_config.oidc_token.audience == "https://kt.example.com/pubsub"
    assert made.ack_deadline_seconds == 60 and made.topic.endswith("/topics/kubetrail-audit-prod")


def test_the_pull_script_builds_a_subscription_the_source_reads(google: GoogleStub, tmp_path: Path) -> None:
    from google.cloud import pubsub_v1

    from kubetrail.pipeline import Pipeline
    from kubetrail.sources.checkpoint import SourceCheckpoints
    from kubetrail.sources.config import Entry
    from kubetrail.sources.gke import parse_spec
    from kubetrail.store import Store
    from tests.intake.shapes import log_entry
    from tests.serve.helpers import audit_event
    from tests.sources.servers import publish_entries

    google.calls.clear()
    text = script("--cluster", "pulled", "--project", PROJECT, "--pull")
    run_script(text, tmp_path, google)
    subscription = f"projects/{PROJECT}/subscriptions/kubetrail-pulled"
    (binding,) = [body for _, path, body in google.calls if path.endswith("kubetrail-pulled:setIamPolicy")]
    reader = f"serviceAccount:kubetrail-reader@{PROJECT}.iam.gserviceaccount.com"
    assert {"role": "roles/pubsub.subscriber", "members": [reader]} in binding["policy"]["bindings"]

    # the sink publishes (here: the test, as the sink would); the source configured as the script says reads it
    publisher = pubsub_v1.PublisherClient()
    entries = [log_entry(audit_event(number, prefix="setup")) for number in range(5)]
    publish_entries(publisher, f"projects/{PROJECT}/topics/kubetrail-audit-pulled", entries)
    assert f"subscription: {subscription}" in text
    store = Store.open(tmp_path / "store")
    try:
        values = {"type": "gke-pubsub", "cluster": "pulled", "subscription": subscription, "wait": "1s"}
        source = parse_spec(Entry(values, "x", "sources[0]", "d")).open(Pipeline(store), SourceCheckpoints(tmp_path))
        assert source.poll_once() == 5 and source.stats.events == 5
    finally:
        store.close()


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--cluster", "p", "--project", PROJECT], "--url: the push setup needs serve's URL"),
        (["--cluster", "p", "--project", PROJECT, "--url", "http://kt.example.com"], "not an https URL"),
        (["--cluster", "p", "--project", "X"], "not a project id"),
        (["--cluster", "bad/name", "--project", PROJECT, "--pull"], "invalid cluster name"),
        (["--cluster", "p", "--project", PROJECT, "--pull", "--service-account", "x"], "not a service account"),
    ],
)
def test_options_that_cannot_work_are_one_line_errors(arguments: list[str], words: str) -> None:
    command = [sys.executable, "-m", "kubetrail.cli.main", "cloud-setup", "gke", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
