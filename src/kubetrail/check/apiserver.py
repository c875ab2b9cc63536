"""Audit findings for a kube-apiserver configuration, per CIS Kubernetes Benchmark control where one exists.

CIS Kubernetes Benchmark (v1.8 to v1.10 numbering): 1.2.16 `--audit-log-path` set, 1.2.17 `--audit-log-maxage`
≥ 30, 1.2.18 `--audit-log-maxbackup` ≥ 10, 1.2.19 `--audit-log-maxsize` ≥ 100, 3.2.1 a minimal audit policy
is created (`--audit-policy-file`), 3.2.2 the policy covers key security concerns. Checks without a CIS
control (the policy and log reachable through the pod's mounts, the apiserver's own option validation,
retention that never ends, webhook and truncation settings) carry `KT-` IDs.

The retention flags are read as kube-apiserver 1.37 reads them (kubernetes/kubernetes#136478, 1.36): a flag
left out takes its default (maxage 366, maxbackup 100, maxsize 100), which meets the control; an explicit 0
lifts that limit (no age or count pruning, no rotation), which keeps more than any minimum, so KT-LOG-RETENTION
warns instead when nothing bounds the log's disk use.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from kubetrail.check.manifest import ApiserverConfig
from kubetrail.emit.kubeconfig import KubeconfigError, load_kubeconfig
from kubetrail.emit.options import (
    DEFAULT_MAX_AGE_DAYS,
    DEFAULT_MAX_BACKUPS,
    DEFAULT_MAX_SIZE_MB,
    FLAGS,
    AuditLogOptions,
    OptionsError,
    parse_flags,
)
from kubetrail.policy import PolicyError, Severity
from kubetrail.policy.lint import lint_policy
from kubetrail.policy.load import LoadedPolicy, load_policy

WEBHOOK_MODES = ("batch", "blocking", "blocking-strict")
_MANIFEST_HINT = "edit the kube-apiserver manifest (the kubelet restarts the pod when the file changes)"


class Status(enum.StrEnum):
    """A finding's outcome; only FAIL makes the check exit non-zero."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One control's result: its ID, what it checks, the outcome and why, and how to fix it."""

    control: str
    title: str
    status: Status
    detail: str
    fix: str = ""
    line: int | None = None


def _int_flag(config: ApiserverConfig, name: str) -> int | None:
    value = config.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return -1


@dataclass(frozen=True)
class _Retention:
    """One CIS retention control: its flag's floor, its default, and what 0 and leaving it out meant before 1.36."""

    control: str
    flag: str
    floor: int
    unit: str
    default: int
    zero: str
    unset_before_1_36: str


_RETENTION = (
    _Retention(
        "CIS 1.2.17",
        "audit-log-maxage",
        30,
        "days",
        DEFAULT_MAX_AGE_DAYS,
        "backups are not removed for their age",
        "no age limit",
    ),
    _Retention(
        "CIS 1.2.18",
        "audit-log-maxbackup",
        10,
        "backups",
        DEFAULT_MAX_BACKUPS,
        "backups are not removed for their number",
        "every backup kept",
    ),
    _Retention(
        "CIS 1.2.19",
        "audit-log-maxsize",
        100,
        "MB",
        DEFAULT_MAX_SIZE_MB,
        "the log is never rotated (kube-apiserver 1.36 and later; before, 0 meant 100 MB)",
        "also 100 MB",
    ),
)


def _minimum(config: ApiserverConfig, rule: _Retention) -> Finding:
    name, floor = rule.flag, rule.floor
    title = f"Ensure --{name} is set to {floor} or as appropriate"
    value = _int_flag(config, name)
    fix = f"set --{name}={floor} (or more) in the kube-apiserver command; {_MANIFEST_HINT}"
    line = config.flag_lines.get(name)
    if not config.get("audit-log-path"):
        detail = f"no audit log file is written, so --{name} has no effect"
        return Finding(rule.control, title, Status.FAIL, detail, fix)
    if value is None:
        detail = (
            f"--{name} is not set: {rule.default} {rule.unit}, kube-apiserver's default since 1.36 "
            f"(before 1.36: {rule.unset_before_1_36})"
        )
        return Finding(rule.control, title, Status.PASS, detail)
    if value == 0:
        return Finding(rule.control, title, Status.PASS, f"--{name}=0: {rule.zero}", line=line)
    if value < floor:
        detail = f"--{name}={config.get(name)} is below {floor} {rule.unit}"
        return Finding(rule.control, title, Status.FAIL, detail, fix, line)
    return Finding(rule.control, title, Status.PASS, f"--{name}={value}", line=line)


def _unbounded(options: AuditLogOptions) -> Finding | None:
    """A WARN when the log's disk use never stops growing (1.37's reading of the flags), else None."""
    title = "Audit log disk use is bounded"
    sizing = "`kubetrail policy simulate` estimates the disk a setting needs"
    if not options.rotates:
        detail = (
            "--audit-log-maxsize=0 turns rotation off (kube-apiserver 1.36 and later): the one file grows until "
            "the disk fills, and --audit-log-maxage/--audit-log-maxbackup never remove anything"
        )
        fix = f"set --audit-log-maxsize=100 (or more); {sizing}"
        return Finding("KT-LOG-RETENTION", title, Status.WARN, detail, fix)
    if options.max_age == 0 and options.max_backups == 0:
        detail = (
            "--audit-log-maxage=0 and --audit-log-maxbackup=0 keep every rotated file: "
            "the log directory grows until the disk fills"
        )
        fix = f"set --audit-log-maxbackup (e.g. 10) or --audit-log-maxage (e.g. 30); {sizing}"
        return Finding("KT-LOG-RETENTION", title, Status.WARN, detail, fix)
    return None


def _log_path(config: ApiserverConfig) -> list[Finding]:
    title = "Ensure --audit-log-path is set"
    path = config.get("audit-log-path")
    fix = f"set --audit-log-path=/var/log/kubernetes/audit/audit.log and mount that directory; {_MANIFEST_HINT}"
    if not path:
        return [Finding("CIS 1.2.16", title, Status.FAIL, "--audit-log-path is not set: no audit log file", fix)]
    line = config.flag_lines.get("audit-log-path")
    if path == "-":
        detail = "--audit-log-path=- writes audit events to the container's stdout: rotation flags do not apply"
        return [Finding("CIS 1.2.16", title, Status.WARN, detail, fix, line)]
    findings = [Finding("CIS 1.2.16", title, Status.PASS, f"--audit-log-path={path}", line=line)]
    if config.is_pod:
        mount = config.mount_for(str(Path(path).parent))
        mount_title = "Audit log directory is a writable hostPath mount"
        if mount is None:
            detail = f"no hostPath volume holds {Path(path).parent}: the log is lost with the container"
            fix = f"add a hostPath volume and a volumeMount for {Path(path).parent}"
            findings.append(Finding("KT-LOG-MOUNT", mount_title, Status.FAIL, detail, fix))
        elif mount.read_only:
            detail = f"{mount.mount_path} is mounted readOnly: the apiserver cannot write {path}"
            findings.append(Finding("KT-LOG-MOUNT", mount_title, Status.FAIL, detail, "set readOnly: false"))
        else:
            detail = f"{path} is on the host at {config.host_path(path)}"
            findings.append(Finding("KT-LOG-MOUNT", mount_title, Status.PASS, detail))
    return findings


def _locate(config: ApiserverConfig, container_path: str, root: Path, manifest_dir: Path) -> Path | None:
    """Where a file the apiserver reads can be read from here: through the mounts, as is, or beside the manifest."""
    candidates: list[Path] = []
    host = config.host_path(container_path) if config.is_pod else None
    for path in (host, container_path):
        if path:
            candidates.append(root / path.lstrip("/") if Path(path).is_absolute() else manifest_dir / path)
    candidates.append(manifest_dir / Path(container_path).name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def _policy(config: ApiserverConfig, root: Path, manifest_dir: Path) -> list[Finding]:
    title = "Ensure that a minimal audit policy is created"
    path = config.get("audit-policy-file")
    line = config.flag_lines.get("audit-policy-file")
    if not path:
        detail = "--audit-policy-file is not set: the apiserver records no audit events at all"
        fix = "write a policy (`kubetrail policy generate --preset cis`) and pass --audit-policy-file=PATH"
        return [Finding("CIS 3.2.1", title, Status.FAIL, detail, fix)]
    findings: list[Finding] = []
    if config.is_pod and config.mount_for(path) is None:
        detail = f"no hostPath volume holds {path}: the apiserver container cannot read it and will not start"
        fix = f"add a hostPath volume and a readOnly volumeMount for {path}"
        findings.append(Finding("KT-POLICY-MOUNT", "Audit policy file is mounted", Status.FAIL, detail, fix, line))
    found = _locate(config, path, root, manifest_dir)
    if found is None:
        detail = f"--audit-policy-file={path} is set but the file is not readable here, so it was not validated"
        fix = f"run `kubetrail policy validate {path}` on the control-plane node (or pass --root)"
        findings.append(Finding("CIS 3.2.1", title, Status.WARN, detail, fix, line))
        return findings
    try:
        loaded = load_policy(found)
    except PolicyError as error:
        first = error.issues[0] if error.issues else None
        detail = f"{found} would be refused by the apiserver: {first.message if first else error}"
        fix = first.hint if first and first.hint else f"run `kubetrail policy validate {found}`"
        findings.append(Finding("CIS 3.2.1", title, Status.FAIL, detail, fix, line))
        return findings
    findings.append(Finding("CIS 3.2.1", title, Status.PASS, f"{found} is a valid audit.k8s.io/v1 policy", line=line))
    findings.append(_coverage(loaded))
    return findings


def _coverage(loaded: LoadedPolicy) -> Finding:
    title = "Ensure that the audit policy covers key security concerns"
    findings = lint_policy(loaded)
    errors = [finding for finding in findings if finding.severity is Severity.ERROR]
    warnings = [finding for finding in findings if finding.severity is Severity.WARNING]
    fix = f"run `kubetrail policy lint {loaded.source}` and apply its fixes"
    if errors:
        return Finding("CIS 3.2.2", title, Status.FAIL, f"{len(errors)} lint errors, first: {errors[0].message}", fix)
    if warnings:
        detail = f"{len(warnings)} lint warnings, first: {warnings[0].message}"
        return Finding("CIS 3.2.2", title, Status.WARN, detail, fix)
    return Finding("CIS 3.2.2", title, Status.PASS, "lint finds no leaked bodies, unrecorded exec or kept noise")


def _log_options(config: ApiserverConfig) -> list[Finding]:
    title = "Audit log options are accepted by the apiserver"
    words = [f"--{name}={value}" for name, value in config.flags.items() if name in FLAGS]
    try:
        options = parse_flags(words)
    except OptionsError as error:
        return [Finding("KT-LOG-OPTIONS", title, Status.FAIL, str(error), error.hint)]
    errors = options.validate()
    if errors:
        return [Finding("KT-LOG-OPTIONS", title, Status.FAIL, "; ".join(errors), "fix the flags named")]
    findings: list[Finding] = []
    if not options.enabled:
        return findings
    if options.path != "-" and (unbounded := _unbounded(options)) is not None:
        findings.append(unbounded)
    if options.format != "json":
        detail = f"--audit-log-format={options.format}: the legacy text format cannot be parsed back into events"
        findings.append(Finding("KT-LOG-FORMAT", "Audit log is JSON", Status.WARN, detail, "--audit-log-format=json"))
    if options.mode == "batch":
        detail = "--audit-log-mode=batch drops events when its buffer is full; blocking never does"
        findings.append(Finding("KT-LOG-MODE", "Audit log mode", Status.INFO, detail, "--audit-log-mode=blocking"))
    if options.truncate_enabled:
        detail = f"events over {options.truncate_max_event_size} bytes are written without their bodies"
        findings.append(Finding("KT-LOG-TRUNCATE", "Audit log truncation", Status.INFO, detail))
    return findings


def _webhook(config: ApiserverConfig, root: Path, manifest_dir: Path) -> list[Finding]:
    path = config.get("audit-webhook-config-file")
    if not path:
        return [Finding("KT-WEBHOOK", "Audit webhook backend", Status.INFO, "no --audit-webhook-config-file: log only")]
    findings: list[Finding] = []
    mode = config.get("audit-webhook-mode") or "batch"
    if mode not in WEBHOOK_MODES:
        detail = f'invalid audit webhook mode {mode}, allowed modes are "{",".join(WEBHOOK_MODES)}"'
        findings.append(
            Finding("KT-WEBHOOK-MODE", "Audit webhook mode", Status.FAIL, detail, "--audit-webhook-mode=batch")
        )
    elif mode == "batch":
        detail = "batch mode drops events once --audit-webhook-batch-buffer-size fills while the webhook is down"
        findings.append(Finding("KT-WEBHOOK-MODE", "Audit webhook mode", Status.INFO, detail))
    if config.get("audit-webhook-truncate-enabled") not in ("true", "1", "t", "True"):
        detail = "an event or batch larger than the receiver accepts is refused, then retried and lost"
        fix = "--audit-webhook-truncate-enabled=true (events over 100 KiB lose their bodies, batches split at 10 MiB)"
        findings.append(Finding("KT-WEBHOOK-TRUNCATE", "Audit webhook truncation", Status.WARN, detail, fix))
    if config.is_pod and config.mount_for(path) is None:
        detail = f"no hostPath volume holds {path}: the apiserver container cannot read it"
        fix = f"add a hostPath volume and a readOnly volumeMount for {path}"
        findings.append(Finding("KT-WEBHOOK-MOUNT", "Audit webhook config is mounted", Status.FAIL, detail, fix))
    found = _locate(config, path, root, manifest_dir)
    title = "Audit webhook kubeconfig"
    if found is None:
        detail = f"{path} is not readable here, so it was not checked"
        findings.append(Finding("KT-WEBHOOK-CONFIG", title, Status.WARN, detail))
        return findings
    try:
        client = load_kubeconfig(found)
    except KubeconfigError as error:
        findings.append(Finding("KT-WEBHOOK-CONFIG", title, Status.FAIL, str(error), error.hint))
        return findings
    if client.server.startswith("http://"):
        detail = f"{client.server} is plain HTTP: audit events (and their bodies) cross the network unencrypted"
        findings.append(Finding("KT-WEBHOOK-CONFIG", title, Status.FAIL, detail, "use an https:// server"))
    elif client.insecure_skip_tls_verify:
        detail = "insecure-skip-tls-verify: anyone on the path can impersonate the receiver"
        fix = "set certificate-authority to the receiver's CA"
        findings.append(Finding("KT-WEBHOOK-CONFIG", title, Status.FAIL, detail, fix))
    else:
        findings.append(Finding("KT-WEBHOOK-CONFIG", title, Status.PASS, f"sends to {client.server} over TLS"))
    return findings


def check_apiserver(
    config: ApiserverConfig, *, root: Path = Path("/"), manifest_dir: Path = Path(".")
) -> list[Finding]:
    """Every audit finding for `config`; files it names are looked for under `root`, then beside the manifest."""
    findings = _log_path(config)
    findings.extend(_minimum(config, rule) for rule in _RETENTION)
    findings.extend(_policy(config, root, manifest_dir))
    findings.extend(_log_options(config))
    findings.extend(_webhook(config, root, manifest_dir))
    return findings
