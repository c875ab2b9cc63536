"""The catalogue: every framework evidences what audit logs can show, and CIS IDs match `check apiserver`'s."""

from __future__ import annotations

import pytest

from kubetrail.check import check_apiserver, parse_config
from kubetrail.report import FRAMEWORKS, Theme
from kubetrail.report.controls import CHECKS_BY_THEME


@pytest.mark.parametrize("key", ["soc2", "pci-dss", "hipaa"])
def test_every_theme_backs_some_control(key: str) -> None:
    themes = {theme for control in FRAMEWORKS[key].controls for theme in control.themes}
    assert themes == set(Theme)


def test_control_ids_are_unique_per_framework() -> None:
    for framework in FRAMEWORKS.values():
        ids = [control.id for control in framework.controls]
        assert len(ids) == len(set(ids)), framework.key


def test_cis_controls_are_the_ones_check_apiserver_reports() -> None:
    config = parse_config("kube-apiserver --audit-log-path=/var/log/audit.log\n", "flags")
    reported = {finding.control for finding in check_apiserver(config)}
    cis = {control.id for control in FRAMEWORKS["cis"].controls}
    assert cis - {"CIS 3.2.2"} <= reported  # 3.2.2 is reported once a policy file is readable
    mapped = {control for controls in CHECKS_BY_THEME.values() for control in controls}
    assert {control for control in mapped if control.startswith("CIS ")} == cis


def test_pci_retention_is_a_year_and_cis_thirty_days() -> None:
    assert FRAMEWORKS["pci-dss"].retention_days == 365
    assert FRAMEWORKS["cis"].retention_days == 30
