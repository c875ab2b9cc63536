"""`kubetrail cloud-setup aks`: the printed script runs as written (sh, variables, command substitution) against
a fake `az` that knows each command the script may use, with its required and allowed options and the rules
Azure documents for their values (names, SKUs, the diagnostic setting's `--logs` JSON, resource ids), and
answers `--query … --output tsv` as az would. The Azure CLI itself (a large PyPI install) is not used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubetrail.cli.cloud_setup import cloud_setup_group

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

# command → (required options, allowed options); values checked by VALUE_RULES
FAKE_AZ = r"""
import json, os, re, sys
SUB = "00000000-0000-0000-0000-000000000000"
COMMANDS = {
    "aks show": ({"resource-group", "name"}, {"query", "output"}),
    "storage account create": ({"name", "resource-group"},
                               {"sku", "kind", "min-tls-version", "allow-blob-public-access", "location"}),
    "storage account show": ({"name", "resource-group"}, {"query", "output"}),
    "monitor diagnostic-settings create": ({"name", "resource", "logs"},
                                           {"storage-account", "event-hub", "event-hub-rule", "workspace"}),
    "role assignment create": ({"assignee", "role", "scope"}, set()),
    "eventhubs namespace create": ({"name", "resource-group"}, {"sku", "location"}),
    "eventhubs eventhub create": ({"name", "namespace-name", "resource-group"}, {"partition-count"}),
    "eventhubs eventhub consumer-group create": ({"name", "eventhub-name", "namespace-name", "resource-group"}, set()),
    "eventhubs namespace authorization-rule show": ({"name", "namespace-name", "resource-group"},
                                                    {"query", "output"}),
    "eventhubs eventhub authorization-rule create": ({"name", "eventhub-name", "namespace-name", "resource-group",
                                                      "rights"}, set()),
    "eventhubs eventhub authorization-rule keys list": ({"name", "eventhub-name", "namespace-name",
                                                        "resource-group"}, {"query", "output"}),
}
RULES = {
    "sku": lambda v, c: v in {"Standard_LRS", "Standard_GRS", "Standard_ZRS", "Premium_LRS"} if c.startswith("storage")
        else v in {"Basic", "Standard", "Premium"},
    "kind": lambda v, c: v in {"StorageV2", "BlobStorage", "BlockBlobStorage"},
    "min-tls-version": lambda v, c: v in {"TLS1_0", "TLS1_1", "TLS1_2"},
    "allow-blob-public-access": lambda v, c: v in {"true", "false"},
    "partition-count": lambda v, c: v.isdigit() and 1 <= int(v) <= 32,
    "rights": lambda v, c: set(v.split()) <= {"Listen", "Send", "Manage"},
    "output": lambda v, c: v in {"json", "tsv", "table", "yaml", "none"},
    "resource": lambda v, c: re.fullmatch(r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
                                          r"Microsoft\.ContainerService/managedClusters/[^/]+", v, re.I) is not None,
    "storage-account": lambda v, c: "/providers/Microsoft.Storage/storageAccounts/" in v,
    "event-hub-rule": lambda v, c: "/providers/Microsoft.EventHub/namespaces/" in v and "/authorizationRules/" in v,
    "role": lambda v, c: v in {"Storage Blob Data Reader"},
}
argv = sys.argv[1:]
words = []
while argv and not argv[0].startswith("--"):
    words.append(argv.pop(0))
command = " ".join(words)
if command not in COMMANDS:
    sys.exit(f"ERROR: '{command}' is misspelled or not recognized by the system.")
options = {}
while argv:
    name = argv.pop(0)
    if not name.startswith("--") or not argv:
        sys.exit(f"ERROR: unrecognized arguments: {name}")
    options[name[2:]] = argv.pop(0)
required, allowed = COMMANDS[command]
missing = required - set(options)
unknown = set(options) - required - allowed
if missing or unknown:
    sys.exit(f"ERROR: {command}: missing {sorted(missing)} unknown {sorted(unknown)}")
for name, value in options.items():
    rule = RULES.get(name)
    if rule is not None and not rule(value, command):
        sys.exit(f"ERROR: {command}: invalid value for --{name}: {value!r}")
if command == "storage account create" and not re.fullmatch(r"[a-z0-9]{3,24}", options["name"]):
    sys.exit("ERROR: storage account names are 3-24 lower-case letters and digits")
if "logs" in options:
    logs = json.loads(options["logs"])
    assert isinstance(logs, list) and logs, "--logs is a JSON list"
    for item in logs:
        assert set(item) <= {"category", "categoryGroup", "enabled", "retentionPolicy"}, item
        assert item["category"] in {"kube-audit", "kube-audit-admin", "kube-apiserver", "guard"}, item
        assert item["enabled"] is True
    if "event-hub" in options:
        assert "event-hub-rule" in options, "--event-hub needs --event-hub-rule"
    assert ("storage-account" in options) != ("event-hub" in options)
with open(os.environ["KUBETRAIL_TEST_CALLS"], "a") as log:
    log.write(json.dumps([command, options]) + "\n")
group = options.get("resource-group", "rg")
answers = {
    "aks show": f"/subscriptions/{SUB}/resourcegroups/{group}/providers/Microsoft.ContainerService/managedClusters/"
                + options.get("name", ""),
    "storage account show": f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/"
                + options.get("name", ""),
    "eventhubs namespace authorization-rule show": f"/subscriptions/{SUB}/resourceGroups/{group}/providers/"
                f"Microsoft.EventHub/namespaces/{options.get('namespace-name')}/authorizationRules/{options.get('name')}",
    "eventhubs eventhub authorization-rule keys list": "Endpoint=sb://ns.servicebus.windows.net/;"
                "SharedAccessKeyName=kubetrail-listen;SharedAccessKey=c2VjcmV0;EntityPath=hub",
}
if options.get("output") == "tsv":
    print(answers[command])
else:
    print("{}")
"""


def script(*arguments: str) -> str:
    result = CliRunner().invoke(cloud_setup_group, ["aks", *arguments])
    assert result.exit_code == 0, result.output
    return result.output


def run_script(text: str, folder: Path) -> list[list[Any]]:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "az"
    fake.write_text(f"#!{sys.executable}\n{FAKE_AZ}")
    fake.chmod(0o755)
    calls = folder / "calls.ndjson"
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "KUBETRAIL_TEST_CALLS": str(calls)}
    done = subprocess.run(["sh", "-c", text], cwd=folder, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in calls.read_text().splitlines()]


def test_the_storage_script_archives_kube_audit_and_grants_serve_read_access(tmp_path: Path) -> None:
    calls = run_script(
        script("--cluster", "prod", "--resource-group", "rg-prod", "--storage-account", "prodaudit", "--reader", "abc"),
        tmp_path,
    )
    assert [command for command, _ in calls] == [
        "aks show", "storage account create", "storage account show", "monitor diagnostic-settings create",
        "role assignment create",
    ]  # fmt: skip
    setting = calls[3][1]
    cluster_id = f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg-prod/providers/Microsoft.ContainerService/"
    assert setting["resource"] == cluster_id + "managedClusters/prod"
    assert json.loads(setting["logs"]) == [{"category": "kube-audit", "enabled": True}]
    assert setting["storage-account"].endswith("/storageAccounts/prodaudit")
    assert calls[4][1]["scope"] == setting["storage-account"] and calls[4][1]["assignee"] == "abc"


def test_the_event_hub_script_streams_kube_audit_admin_with_a_listen_only_key_in_a_private_file(
    tmp_path: Path,
) -> None:
    text = script("--cluster", "prod", "--resource-group", "rg", "--eventhub-namespace", "prod-audit", "--admin-only")
    calls = run_script(text, tmp_path)
    assert [command for command, _ in calls] == [
        "aks show", "eventhubs namespace create", "eventhubs eventhub create",
        "eventhubs eventhub consumer-group create", "eventhubs namespace authorization-rule show",
        "monitor diagnostic-settings create", "eventhubs eventhub authorization-rule create",
        "eventhubs eventhub authorization-rule keys list",
    ]  # fmt: skip
    setting = calls[5][1]
    assert json.loads(setting["logs"]) == [{"category": "kube-audit-admin", "enabled": True}]
    assert setting["event-hub"] == "kubetrail-prod" and setting["event-hub-rule"].endswith("/RootManageSharedAccessKey")
    assert calls[6][1]["rights"] == "Listen"
    secret = tmp_path / "eventhub-connection"
    assert "SharedAccessKeyName=kubetrail-listen" in secret.read_text() and secret.stat().st_mode & 0o077 == 0
    assert "connection-string-env: AKS_EVENTHUB_CONNECTION" in text and "eventhub: kubetrail-prod" in text


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--cluster", "p", "--resource-group", "rg"], "one of --storage-account and --eventhub-namespace"),
        (["--cluster", "p", "--resource-group", "rg", "--storage-account", "Bad_Name"], "not a storage account"),
        (["--cluster", "p", "--resource-group", "rg", "--eventhub-namespace", "ns"], "not an Event Hubs namespace"),
        (["--cluster", "bad/name", "--resource-group", "rg", "--storage-account", "abc"], "invalid cluster name"),
    ],
)
def test_options_that_cannot_work_are_one_line_errors(arguments: list[str], words: str) -> None:
    command = [sys.executable, "-m", "kubetrail.cli.main", "cloud-setup", "aks", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
