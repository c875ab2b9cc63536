"""The command starts like a real tool: `--help` imports no sub-command, and a missing extra is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubetrail.cli import commands, policy
from tests.query.events import event as query_event

BLOCK_EXTRAS = "import sys; sys.modules['nats'] = None; sys.modules['pyspark'] = None; sys.modules['boto3'] = None; "


def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", commands.COMMANDS)
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    assert commands.load(name).get_short_help_str(limit=200) == commands.COMMANDS[name].short_help


def test_help_lists_every_command_without_importing_any() -> None:
    code = (
        "import sys; from kubetrail.cli.main import cli\n"
        "try:\n    cli(['--help'], prog_name='kubetrail')\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('duckdb', 'pyarrow', 'starlette', 'uvicorn', 'nats', 'msgspec', 'kubetrail.cli.serve')"
        " if m in sys.modules]\nprint('loaded:', heavy)"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    for name in commands.COMMANDS:
        assert f"  {name} " in result.stdout
    assert result.stdout.strip().endswith("loaded: []")


def test_commands_run_without_the_optional_extras(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete",'
        '"requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"jane"},'
        '"stageTimestamp":"2026-03-19T10:00:00.000000Z"}\n'
    )
    main = BLOCK_EXTRAS + "from kubetrail.cli.main import main; sys.argv = ['kubetrail', *sys.argv[1:]]; main()"
    detect = run(main, "detect", str(log), "-q")
    assert detect.returncode == 0, detect.stderr
    worker = run(main, "worker", "--bus", "nats://127.0.0.1:4222", "--lake", str(tmp_path / "lake"))
    assert worker.returncode == 2
    error, hint = worker.stderr.strip().splitlines()
    assert error == "error: kubetrail worker needs the NATS client (nats-py), which is not installed (the `nats` extra)"
    assert hint.strip() == "hint: pip install 'kubetrail[nats]'"
    serve = run(main, "serve", "--bus", "nats://127.0.0.1:4222", "--store", str(tmp_path / "spool"))
    assert serve.returncode == 2 and "the `nats` extra" in serve.stderr and "Traceback" not in serve.stderr


def test_a_cloud_source_without_its_extra_is_one_line(tmp_path: Path) -> None:
    main = BLOCK_EXTRAS + "from kubetrail.cli.main import main; sys.argv = ['kubetrail', *sys.argv[1:]]; main()"
    group = "/aws/eks/a/cluster"
    serve = run(main, "serve", "--store", str(tmp_path / "s"), "--listen", "127.0.0.1:0", "--eks-log-group", group)
    assert serve.returncode == 2 and "Traceback" not in serve.stderr
    error, hint = serve.stderr.strip().splitlines()[-2:]
    assert error == (
        "error: the eks-cloudwatch source needs the AWS SDK for Python (boto3), which is not installed "
        "(the `aws` extra)"
    )
    assert hint.strip() == "hint: pip install 'kubetrail[aws]'"


@pytest.mark.parametrize(
    ("flag", "value", "blocked", "words"),
    [
        ("--gke-subscription", "projects/p/subscriptions/s", "google.cloud.pubsub_v1", "the gke-pubsub source"),
        ("--pubsub-audience", "https://kt.example.com/pubsub", "jwt", "the Pub/Sub push endpoint"),
        ("--aks-storage-account", "https://a.blob.core.windows.net", "azure.storage.blob", "the aks-storage source"),
        ("--aks-eventhub", "ns.servicebus.windows.net/hub", "azure.eventhub", "the aks-eventhub source"),
    ],
)
def test_a_gke_or_aks_source_without_its_extra_is_one_line(
    tmp_path: Path, flag: str, value: str, blocked: str, words: str
) -> None:
    main = f"import sys; sys.modules[{blocked!r}] = None; " + (
        "from kubetrail.cli.main import main; sys.argv = ['kubetrail', *sys.argv[1:]]; main()"
    )
    serve = run(main, "serve", "--store", str(tmp_path / "s"), "--listen", "127.0.0.1:0", "--no-ui", flag, value)
    assert serve.returncode == 2 and "Traceback" not in serve.stderr, serve.stderr
    error, hint = serve.stderr.strip().splitlines()[-2:]
    extra = "gcp" if "google" in blocked or blocked == "jwt" else "azure"
    assert error.startswith(f"error: {words} needs ") and error.endswith(f"(the `{extra}` extra)")
    assert hint.strip() == f"hint: pip install 'kubetrail[{extra}]'"


HEAVY = (
    "duckdb",
    "pyarrow",
    "nats",
    "starlette",
    "uvicorn",
    "httpx",
    "kubetrail.detect",
    "kubetrail.store",
    "kubetrail.serve",
    "kubetrail.pipeline",
    "kubetrail.policy.simulate",
    "kubetrail.coverage",
)
PRESET = Path(__file__).resolve().parents[2] / "src" / "kubetrail" / "policy" / "presets" / "recommended.yaml"


def loaded_after(*args: str, modules: tuple[str, ...] = HEAVY) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `kubetrail ARGS` in a fresh interpreter; its output and which of `modules` it imported."""
    code = (
        "import sys; from kubetrail.cli.main import cli\n"
        "try:\n    cli(sys.argv[1:], prog_name='kubetrail')\nexcept SystemExit as stop:\n    code = stop.code\n"
        f"import json; print('loaded:', json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))"
    )
    result = run(code, *args)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("loaded: "), result.stderr
    return result, json.loads(last.removeprefix("loaded: "))


def test_help_imports_none_of_the_engines() -> None:
    assert loaded_after("--help")[1] == []


def test_policy_help_lists_its_commands_without_importing_them() -> None:
    result, heavy = loaded_after("policy", "--help")
    assert heavy == []
    for name in policy.POLICY_COMMANDS:
        assert f"  {name} " in result.stdout


@pytest.mark.parametrize("name", policy.POLICY_COMMANDS)
def test_the_listed_policy_help_is_the_commands_own(name: str) -> None:
    entry = policy.POLICY_COMMANDS[name]
    assert commands.load_entry(entry).get_short_help_str(limit=200) == entry.short_help
    assert commands.load_entry(entry).name == name


def test_policy_validate_loads_the_policy_engine_only(tmp_path: Path) -> None:
    result, heavy = loaded_after("policy", "validate", str(PRESET))
    assert result.stdout.splitlines()[0] == "valid"
    assert heavy == []
    refused = tmp_path / "policy.yaml"
    refused.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Everything\n")
    result, heavy = loaded_after("policy", "validate", str(refused))
    assert "rules[0].level" in result.stdout and "valid\n" not in result.stdout
    assert heavy == []


def test_detect_help_loads_no_engine() -> None:
    result, heavy = loaded_after("detect", "--help")
    assert "--min-priority" in result.stdout and "--max-keys" in result.stdout
    assert heavy == []


def test_detect_options_name_the_engines_own_priorities_and_key_limit() -> None:
    from kubetrail.cli import detect
    from kubetrail.detect import Priority
    from kubetrail.detect.stateful.spec import DEFAULT_MAX_KEYS

    assert [*(priority.name.lower() for priority in Priority), "info"] == detect._PRIORITY_CHOICES
    assert detect._DEFAULT_MAX_KEYS == DEFAULT_MAX_KEYS


WRITERS = (
    "pyarrow.compute",
    "pyarrow.parquet",
    "asyncio",
    "kubetrail.store.seal",
    "kubetrail.detect",
    "kubetrail.serve",
)


def test_a_query_of_a_store_loads_nothing_that_only_writes(tmp_path: Path) -> None:
    """`query --store` opens the store read-only: Parquet writing, Arrow compute and asyncio stay unloaded."""
    event = query_event("5c1b7a54-0d0e-4a5c-9b8e-0c1c2a3b4d5e", resource="secrets", user="alice", name="db")
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(event) + "\n")
    store = tmp_path / "store"
    ingest = [sys.executable, "-m", "kubetrail", "ingest", "--store", str(store), "--no-detect", "--no-progress"]
    subprocess.run([*ingest, str(log)], check=True, capture_output=True, timeout=120)
    query = ("query", "--store", str(store), "resource=secrets user=alice", "-o", "ndjson", "--limit", "0")
    result, loaded = loaded_after(*query, modules=WRITERS)
    printed = result.stdout.strip().splitlines()[:-1]
    assert [json.loads(line)["auditID"] for line in printed] == [event["auditID"]], result.stderr
    assert loaded == []
