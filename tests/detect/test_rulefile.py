"""Rule files as Falco loads them: lists, macros, rules, appends, overrides, versions, errors with positions."""

from __future__ import annotations

import re

import pytest

from kubetrail.detect import Engine, Matching, RuleLoadError, RuleSource, load_ruleset, read_rules
from tests.detect.helpers import fired, make_event, rule, ruleset

CREATE_POD = make_event()
GET_SECRET = make_event(verb="get", objectRef={"resource": "secrets", "namespace": "default", "name": "db"})


def names(text: str, *more: str, event: object = CREATE_POD, matching: Matching = Matching.ALL) -> list[str]:
    engine = Engine(ruleset(text, *more), matching=matching)
    return fired(engine, event)  # type: ignore[arg-type]


def test_lists_macros_and_rules() -> None:
    text = """
- list: write_verbs
  items: [create, update, "patch"]
- macro: writes
  condition: ka.verb in (write_verbs)
- rule: Write
  desc: any write
  condition: writes and ka.target.resource = pods
  output: "%ka.user.name wrote"
  priority: NOTICE
  source: k8s_audit
  tags: [k8s, write]
"""
    assert names(text) == ["Write"]
    assert names(text, event=GET_SECRET) == []


def test_a_list_may_include_a_list_defined_before_it_only() -> None:
    text = """
- list: early
  items: [create]
- list: combined
  items: [early, late]
- list: late
  items: [get]
""" + rule("ka.verb in (combined)")
    assert names(text) == ["r"]
    assert names(text, event=GET_SECRET) == []


def test_a_macro_may_only_use_macros_defined_before_it() -> None:
    text = """
- macro: outer
  condition: inner
- macro: inner
  condition: ka.verb = create
""" + rule("outer")
    with pytest.raises(RuleLoadError) as caught:
        ruleset(text)
    assert "Undefined macro 'inner' used in filter." in str(caught.value)
    assert caught.value.source == "rules-0.yaml" and caught.value.line == 3


def test_a_rule_may_use_a_macro_defined_after_it() -> None:
    text = rule("later") + "- macro: later\n  condition: ka.verb = create\n"
    assert names(text) == ["r"]


def test_an_undefined_macro_in_a_rule_is_an_error_naming_the_rule() -> None:
    with pytest.raises(RuleLoadError) as caught:
        ruleset(rule("ka.verb = create and nowhere"))
    message = str(caught.value)
    assert "rule 'r'" in message and "Undefined macro 'nowhere'" in message
    assert caught.value.line == 3


def test_appending_to_lists_and_macros_old_and_new_syntax() -> None:
    base = "- list: verbs\n  items: [get]\n- macro: is_pod\n  condition: ka.target.resource = secrets\n"
    base += rule("ka.verb in (verbs) and is_pod")
    legacy = "- list: verbs\n  items: [create]\n  append: true\n"
    legacy += "- macro: is_pod\n  condition: or ka.target.resource = pods\n  append: true\n"
    override = "- list: verbs\n  items: [create]\n  override:\n    items: append\n"
    override += "- macro: is_pod\n  condition: or ka.target.resource = pods\n  override:\n    condition: append\n"
    assert names(base) == []
    assert names(base, legacy) == ["r"]
    assert names(base, override) == ["r"]


def test_redefining_a_list_or_macro_replaces_it() -> None:
    base = "- list: verbs\n  items: [get]\n" + rule("ka.verb in (verbs)")
    assert names(base, "- list: verbs\n  items: [create]\n") == ["r"]
    assert names(base, "- list: verbs\n  items: [create]\n  override:\n    items: replace\n") == ["r"]


def test_rule_override_append_and_replace() -> None:
    base = rule("ka.verb = create", output="created", priority="NOTICE")
    appended = """
- rule: r
  condition: and ka.target.namespace = other
  output: "(more)"
  desc: and more
  tags: [extra]
  override:
    condition: append
    output: append
    desc: append
    tags: append
"""
    assert names(base, appended) == []
    replaced = """
- rule: r
  condition: ka.verb = create
  priority: CRITICAL
  output: "new %ka.verb"
  tags: [a]
  override:
    condition: replace
    priority: replace
    output: replace
    tags: replace
"""
    engine = Engine(ruleset(base, appended, replaced))
    alerts = engine.evaluate(CREATE_POD)
    assert [alert.rule for alert in alerts] == ["r"]
    assert alerts[0].priority.name == "CRITICAL"
    assert alerts[0].message == "new create"
    assert alerts[0].tags == ("a",)
    appended_only = Engine(ruleset(rule("ka.verb = create", output="created"), appended.replace("other", "default")))
    alert = appended_only.evaluate(CREATE_POD)[0]
    assert alert.message == "created (more)"
    assert alert.tags == ("extra",)


def test_legacy_rule_append_extends_the_condition() -> None:
    base = rule("ka.verb = create")
    assert names(base, "- rule: r\n  condition: and ka.target.namespace = other\n  append: true\n") == []


def test_enabled_only_item_and_enabled_override() -> None:
    base = rule("ka.verb = create")
    assert names(base, "- rule: r\n  enabled: false\n") == []
    assert names(base, "- rule: r\n  enabled: false\n", "- rule: r\n  enabled: true\n") == ["r"]
    assert names(base, "- rule: r\n  enabled: false\n  override:\n    enabled: replace\n") == []
    assert names(rule("ka.verb = create").replace("source:", "enabled: false\n  source:")) == []


def test_a_later_definition_keeps_the_rule_in_its_place_for_first_matching() -> None:
    first = rule("ka.verb = create", name="A") + rule("ka.verb = create", name="B")
    redefined = rule("ka.target.resource = pods", name="A")
    assert names(first, redefined, matching=Matching.FIRST) == ["A"]


def test_only_k8s_audit_rules_load_others_are_skipped_with_a_notice() -> None:
    syscall = "- rule: shell\n  desc: d\n  condition: proc.name = bash\n  output: o\n  priority: WARNING\n"
    other = rule("ka.verb = create", name="ct").replace("k8s_audit", "aws_cloudtrail")
    loaded = ruleset(syscall + other + rule("ka.verb = create"))
    assert [compiled.name for compiled in loaded.rules] == ["r"]
    notices = [str(notice) for notice in loaded.notices]
    assert any("rule 'shell' has source 'syscall', skipping" in notice for notice in notices)
    assert any("rule 'ct' has source 'aws_cloudtrail', skipping" in notice for notice in notices)


def test_required_versions() -> None:
    ruleset("- required_engine_version: 15\n" + rule("ka.verb = create"))
    ruleset("- required_engine_version: 0.40.0\n")
    with pytest.raises(RuleLoadError, match=r"Rules require engine version 0\.1000\.0"):
        ruleset("- required_engine_version: 1000\n")
    with pytest.raises(RuleLoadError, match="semver"):
        ruleset("- required_engine_version: latest\n")
    plugins = "- required_plugin_versions:\n  - name: k8saudit\n    version: {}\n  - name: json\n    version: 0.7.0\n"
    ruleset(plugins.format("0.18.0"))
    ruleset(plugins.format("0.7.0"))
    with pytest.raises(RuleLoadError, match=re.escape("Plugin 'k8saudit' version 0.30.0 is required")):
        ruleset(plugins.format("0.30.0"))
    with pytest.raises(RuleLoadError, match=re.escape("Plugin 'k8saudit' version 1.0.0 is required")):
        ruleset(plugins.format("1.0.0"))
    other = ruleset("- required_plugin_versions:\n  - name: cloudtrail\n    version: 0.1.0\n")
    assert "not provided by kubetrail" in str(other.notices[0])


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("- rule: r\n  desc: d\n  output: o\n  priority: WARNING\n", "Item has no mapping for key 'condition'", 1),
        (rule("ka.verb = get").replace("WARNING", "LOUD"), "Invalid priority 'LOUD'", 5),
        ("- list: l\n  items: a\n", "Value for key 'items' is not a sequence", 2),
        ("rule: r\n", "Rules content is not yaml array of objects", 1),
        ("- rule: r\n  condition: x\n  override:\n    condition: append\n", "no rule by that name", 1),
        ("- list: l\n  items: [a]\n  append: true\n", "no list by that name already exists", 1),
        ("- macro: m\n  condition: x\n  append: true\n", "no macro by that name already exists", 1),
        ("- macro: 1m\n  condition: x\n", "Macro name '1m' is invalid", 1),
        ("- list: 'a b'\n  items: []\n", "List name 'a b' is invalid", 1),
        (
            rule("ka.verb = get") + "- rule: r\n  output: o\n  override:\n    condition: append\n",
            "An append override for 'condition' was specified but 'condition' is not defined",
            7,
        ),
        (
            rule("ka.verb = get") + "- rule: r\n  condition: x\n  output: o\n  override:\n    condition: append\n",
            "Unexpected key 'output': no corresponding entry under 'override' is defined.",
            7,
        ),
        (
            rule("ka.verb = get") + "- rule: r\n  priority: ERROR\n  override:\n    priority: append\n",
            "Key 'priority' cannot be appended to, use 'replace' instead",
            10,
        ),
        (
            rule("ka.verb = get") + "- rule: r\n  condition: x\n  append: true\n  override:\n    condition: append\n",
            "Keys 'override' and 'append: true' cannot be used together.",
            7,
        ),
        ("- rule: r\n  desc: [\n", "YAML parse error", 3),
    ],
)
def test_rule_file_errors_say_what_and_where(text: str, message: str, line: int) -> None:
    with pytest.raises(RuleLoadError) as caught:
        ruleset(text)
    assert message in str(caught.value)
    assert caught.value.source == "rules-0.yaml"
    assert caught.value.line == line


def test_condition_syntax_errors_point_into_the_file() -> None:
    text = """- rule: r
  desc: d
  condition: >
    ka.verb = create and
    (ka.target.resource = pods
  output: o
  priority: WARNING
  source: k8s_audit
"""
    with pytest.raises(RuleLoadError) as caught:
        ruleset(text)
    error = caught.value
    assert "expected a ')' token" in str(error)
    assert error.line == 5
    assert "rule 'r'" in str(error)


def test_unknown_fields_in_conditions_and_outputs_are_errors() -> None:
    with pytest.raises(RuleLoadError, match=re.escape("nonexistent field ka.nope")) as caught:
        ruleset(rule("ka.verb = create and ka.nope = 1"))
    assert caught.value.column is not None
    with pytest.raises(RuleLoadError, match=re.escape("invalid output: invalid formatting token %proc.name")):
        ruleset(rule("ka.verb = create", output="shell %proc.name"))
    with pytest.raises(RuleLoadError, match="requires an argument"):
        ruleset(rule("ka.uri.param = x"))
    with pytest.raises(RuleLoadError, match="does not accept an argument"):
        ruleset(rule("ka.verb[0] = x"))


def test_several_files_load_in_order_into_one_collector() -> None:
    collector = read_rules(
        [
            RuleSource("a.yaml", "- list: l\n  items: [a]\n"),
            RuleSource("b.yaml", "- list: l\n  items: [b]\n  append: true\n"),
        ]
    )
    assert collector.lists["l"].items == ["a", "b"]
    assert any("deprecated" in str(notice) for notice in collector.notices)


def test_a_rules_file_of_only_comments_or_empty_documents_loads() -> None:
    assert load_ruleset([RuleSource("empty.yaml", "# nothing\n---\n")]).rules == []
