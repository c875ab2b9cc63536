"""The public API is exactly `kubetrail.__all__`: pinned here, so that a name cannot disappear by accident.

Removing or renaming a name below is a breaking change: it needs a minor release while kubetrail is 0.x (a major
one from 1.0) and a "Breaking" entry in CHANGELOG.md. Adding one is a feature: add it here, to docs/reference.md
and to CHANGELOG.md.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import kubetrail

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = [
    "Alert",
    "AuditDecision",
    "AuditMiddleware",
    "Backend",
    "BackendError",
    "Batch",
    "BatchConfig",
    "Buffered",
    "CompiledPolicy",
    "DetectError",
    "Engine",
    "Event",
    "EventBuilder",
    "EventContext",
    "EventList",
    "GroupResources",
    "IntakeError",
    "KubetrailError",
    "Level",
    "LoadedPolicy",
    "LogBackend",
    "ObjectReference",
    "OncePerRequest",
    "Policy",
    "PolicyError",
    "PolicyRule",
    "Priority",
    "QueryError",
    "Rejection",
    "RequestAttributes",
    "RequestInfo",
    "RequestRecorder",
    "RotatingFile",
    "RuleSet",
    "Source",
    "Stage",
    "Status",
    "Store",
    "StoreError",
    "StoreOptions",
    "StreamWriter",
    "TruncateConfig",
    "Truncating",
    "Union",
    "UserInfo",
    "UserResolver",
    "WSGIAuditMiddleware",
    "WSGIUserResolver",
    "WebhookBackend",
    "WebhookClientConfig",
    "compile_policy",
    "decode_event",
    "detect_events",
    "encode_event",
    "expand_inputs",
    "load_kubeconfig",
    "load_policy",
    "load_policy_bytes",
    "load_ruleset",
    "new_webhook_backend",
    "open_files",
    "open_store",
    "read_bytes",
    "read_events",
    "read_paths",
    "resolve_request_info",
    "rule_sources",
]
TYPE_ALIASES = {"UserResolver", "WSGIUserResolver"}
HEAVY = ("duckdb", "pyarrow", "starlette", "uvicorn", "msgspec", "httpx", "yaml", "anyio")


def test_all_is_exactly_the_public_names() -> None:
    assert sorted(kubetrail.__all__) == sorted(set(kubetrail.__all__)), "a name is listed twice"
    assert sorted(kubetrail.__all__) == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_imports_from_kubetrail_and_is_documented(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from kubetrail import {name}", namespace)
    value = namespace[name]
    assert value is getattr(kubetrail, name)
    if name not in TYPE_ALIASES:
        assert inspect.getdoc(value), f"kubetrail.{name} has no docstring"


def test_static_imports_match_the_lazy_ones() -> None:
    """Type checkers and the API reference read the TYPE_CHECKING imports; at run time names load from _EXPORTS."""
    tree = ast.parse((ROOT / "src" / "kubetrail" / "__init__.py").read_text())
    static: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module != "typing":
                    assert statement.module is not None
                    for alias in statement.names:
                        assert alias.asname == alias.name, "re-export as `import X as X`"
                        static[alias.name] = statement.module
    assert static == kubetrail._EXPORTS


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = kubetrail.no_such_name  # type: ignore[attr-defined]
    assert set(PUBLIC) <= set(dir(kubetrail))


def test_the_reference_documents_every_public_name_once() -> None:
    documented = re.findall(r"^::: kubetrail\.(\w+)$", (ROOT / "docs" / "reference.md").read_text(), re.MULTILINE)
    assert sorted(documented) == PUBLIC


def test_importing_kubetrail_loads_nothing_heavy() -> None:
    code = "import sys, kubetrail; print(sorted(m for m in sys.modules if m.split('.')[0] in sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, *HEAVY, "kubetrail"], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "['kubetrail']"


def test_the_version_is_the_project_version_and_has_a_changelog_entry() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert kubetrail.__version__ == project["version"]
    assert re.search(rf"^## \[?{re.escape(kubetrail.__version__)}\]?", (ROOT / "CHANGELOG.md").read_text(), re.M)
