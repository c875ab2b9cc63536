"""Allow-lists drop expected alerts of the built-in set without editing a rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubetrail.detect import BUILTIN, Engine, EventContext, load_ruleset, rule_sources
from kubetrail.detect.allowlist import AllowListError, load_allowlist, parse_allowlist
from kubetrail.model import decode_document

FIXTURES = Path(__file__).parent / "builtin" / "fixtures"
ENGINE = Engine(load_ruleset(rule_sources([BUILTIN])))


def _alerts_after(allow_text: str, fixture: str) -> list[str]:
    """Rules still alerting on a fixture event once the allow-list has been applied."""
    allow = parse_allowlist(allow_text)
    line = (FIXTURES / fixture).read_bytes()
    (event,) = decode_document(json.dumps(json.loads(line)).encode())
    ctx = EventContext(event)
    return [alert.rule for alert in allow.filter(ENGINE.detect(ctx), ctx)]


def test_without_an_allow_list_entry_the_alert_stays() -> None:
    assert _alerts_after("allow: {users: [bob@example.com]}", "secret-read-by-human/positive-1.json") == [
        "Secret Read By Human"
    ]


def test_a_user_pattern_drops_every_alert_of_that_user() -> None:
    assert _alerts_after("allow: {users: ['alice@*']}", "secret-read-by-human/positive-1.json") == []


def test_groups_and_namespaces_are_independent_lists() -> None:
    assert _alerts_after("allow: {groups: [developers]}", "secret-read-by-human/positive-1.json") == []
    assert _alerts_after("allow: {namespaces: [payments]}", "secret-read-by-human/positive-1.json") == []
    assert _alerts_after("allow: {namespaces: [shop]}", "secret-read-by-human/positive-1.json") != []


def test_source_ranges_need_every_client_address_inside() -> None:
    fixture = "system-identity-used-from-public-address/positive-2.json"  # from 198.51.100.4
    assert _alerts_after("allow: {source_ips: [198.51.100.0/24]}", fixture) == []
    assert _alerts_after("allow: {source_ips: ['10.0.0.0/8', '2001:db8::/32']}", fixture) != []


def test_images_must_all_match() -> None:
    fixture = "privileged-container-started/positive-1.json"  # alpine:3.20
    assert _alerts_after("allow: {images: ['alpine:*']}", fixture) == []
    assert _alerts_after("allow: {images: ['registry.example.com/*']}", fixture) != []


def test_a_rule_entry_needs_all_its_criteria_and_touches_only_that_rule() -> None:
    fixture = "secrets-listed-across-namespaces/positive-1.json"  # alice lists all secrets: two rules fire
    both = "allow: {rules: {Secrets Listed Across Namespaces: {users: [alice@example.com], groups: [developers]}}}"
    assert _alerts_after(both, fixture) == ["Secret Read By Human"]
    half = "allow: {rules: {Secrets Listed Across Namespaces: {users: [alice@example.com], groups: [sre]}}}"
    assert sorted(_alerts_after(half, fixture)) == ["Secret Read By Human", "Secrets Listed Across Namespaces"]


def test_unknown_rule_names_are_reported() -> None:
    allow = parse_allowlist("allow: {rules: {Secret Read By Humans: {users: [x]}}}")
    assert allow.unknown_rules(["Secret Read By Human"]) == ["Secret Read By Humans"]


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("allow:\n  users: bob\n", 2, "allow.users"),
        ("allow:\n  people: [bob]\n", 2, "allow.people"),
        ("allow:\n  source_ips: [10.0.0.0/33]\n", None, "allow.source_ips"),
        ("allow:\n  rules:\n    X: {}\n", 3, "allow.rules.X"),
        ("deny: {users: [x]}\n", 1, "deny"),
    ],
)
def test_bad_files_name_line_and_field(text: str, line: int | None, field: str) -> None:
    with pytest.raises(AllowListError) as caught:
        parse_allowlist(text, "allow.yaml")
    assert caught.value.line == line
    assert caught.value.field == field
    assert str(caught.value).startswith("allow.yaml")


def test_an_empty_file_allows_nothing(tmp_path: Path) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text("")
    assert load_allowlist(path).common.empty


def test_detect_applies_the_allow_list_file(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    events = [json.loads((FIXTURES / name).read_text()) for name in ("secret-read-by-human/positive-1.json",)]
    log.write_text("".join(json.dumps(event) + "\n" for event in events))
    allow = tmp_path / "allow.yaml"
    allow.write_text("allow:\n  rules:\n    Secret Read By Human: {users: [alice@example.com]}\n")
    command = [str(Path(sys.executable).parent / "kubetrail"), "detect", str(log), "-q", "-o", "json"]
    before = subprocess.run(command, capture_output=True, text=True, check=True)
    after = subprocess.run([*command, "--allow", str(allow)], capture_output=True, text=True, check=True)
    assert [json.loads(line)["rule"] for line in before.stdout.splitlines()] == ["Secret Read By Human"]
    assert after.stdout == ""


def test_outcomes_drop_alerts_of_requests_that_ended_that_way() -> None:
    refused = "dangerous-pod-spec-refused/positive-1.json"  # answered 403: denied
    assert _alerts_after("allow: {outcomes: [denied]}", refused) == []
    assert _alerts_after("allow: {outcomes: [succeeded, failed]}", refused) == ["Dangerous Pod Spec Refused"]
    assert _alerts_after("allow: {outcomes: [failed]}", "dangerous-pod-spec-refused/positive-2.json") == []  # 422


def test_an_outcome_in_a_rule_entry_must_match_with_the_other_criteria() -> None:
    refused = "dangerous-pod-spec-refused/positive-1.json"  # alice, denied
    both = "allow: {rules: {Dangerous Pod Spec Refused: {users: [alice@example.com], outcomes: [denied]}}}"
    assert _alerts_after(both, refused) == []
    other = "allow: {rules: {Dangerous Pod Spec Refused: {users: [alice@example.com], outcomes: [succeeded]}}}"
    assert _alerts_after(other, refused) == ["Dangerous Pod Spec Refused"]


def test_an_event_without_a_response_code_matches_no_outcome() -> None:
    allow = parse_allowlist("allow: {outcomes: [succeeded, denied, failed]}")
    line = (FIXTURES / "dangerous-pod-spec-refused/positive-1.json").read_text()
    document = json.loads(line)
    document.pop("responseStatus")
    document["stage"] = "RequestReceived"
    (event,) = decode_document(json.dumps(document).encode())
    assert not allow.common.matches(EventContext(event))


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("allow:\n  outcomes:\n    - denied\n    - refused\n", 4, "allow.outcomes"),
        ("allow:\n  outcomes: denied\n", 2, "allow.outcomes"),
        ("allow:\n  rules:\n    X:\n      outcomes: [Succeeded]\n", 4, "allow.rules.X.outcomes"),
    ],
)
def test_a_bad_outcome_names_file_line_and_field(text: str, line: int, field: str) -> None:
    with pytest.raises(AllowListError) as caught:
        parse_allowlist(text, "allow.yaml")
    assert (caught.value.line, caught.value.field) == (line, field)
    assert str(caught.value).startswith(f"allow.yaml:{line}: {field}:")
    if "is not an outcome" in str(caught.value):
        assert caught.value.hint == "use one of: succeeded, denied, failed"
