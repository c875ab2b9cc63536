"""Read kube-apiserver's flags from a static pod manifest or a flags file, with the pod's hostPath mounts.

A manifest is a `kind: Pod` YAML (as kubeadm writes /etc/kubernetes/manifests/kube-apiserver.yaml);
the flags are the kube-apiserver container's `command` after the binary, then its `args`. A kubeadm
`ClusterConfiguration` contributes `apiServer.extraArgs` (a map in v1beta3, a name/value list in
v1beta4) and `apiServer.extraVolumes` as mounts. Anything else is read as a flags file: shell-style
words (quotes and `\\` line continuations), of which the `--flag=value` / `--flag value` words count.
Like pflag, a repeated flag keeps its last value.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from kubetrail.errors import KubetrailError

APISERVER = "kube-apiserver"


class ManifestError(KubetrailError):
    """A manifest or flags file that cannot be read as kube-apiserver's configuration."""

    def __init__(self, message: str, *, source: str, hint: str = "") -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.hint = hint or "pass the kube-apiserver static pod manifest or a file of its --flags"


@dataclass(frozen=True)
class Mount:
    """A container path backed by a hostPath volume."""

    mount_path: str
    host_path: str
    read_only: bool


@dataclass
class ApiserverConfig:
    """The flags kube-apiserver runs with and, for a pod, where its container paths live on the host."""

    source: str
    flags: dict[str, str]
    flag_lines: dict[str, int] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    is_pod: bool = False

    def get(self, name: str) -> str | None:
        """The value of `--name`, or None when not set."""
        return self.flags.get(name)

    def mount_for(self, container_path: str) -> Mount | None:
        """The hostPath mount holding `container_path` (the most specific one), or None."""
        path = PurePosixPath(container_path)
        best: Mount | None = None
        for mount in self.mounts:
            base = PurePosixPath(mount.mount_path)
            if (path == base or base in path.parents) and (
                best is None or len(mount.mount_path) > len(best.mount_path)
            ):
                best = mount
        return best

    def host_path(self, container_path: str) -> str | None:
        """Where `container_path` is on the host, through the mounts (None when no mount holds it)."""
        mount = self.mount_for(container_path)
        if mount is None:
            return None
        relative = PurePosixPath(container_path).relative_to(PurePosixPath(mount.mount_path))
        return str(PurePosixPath(mount.host_path) / relative) if str(relative) != "." else mount.host_path


def parse_flag_words(words: list[str]) -> dict[str, str]:
    """`--a=1 --b 2 --c` → {a: 1, b: 2, c: "true"}; words that are not flags (the binary) are skipped."""
    flags: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("--") or word == "--":
            continue
        name, has_value, value = word[2:].partition("=")
        if not has_value:
            if index < len(words) and not words[index].startswith("--"):
                value = words[index]
                index += 1
            else:
                value = "true"
        flags[name] = value
    return flags


def _container(document: dict[str, Any], source: str) -> dict[str, Any]:
    spec = document.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list) or not containers:
        raise ManifestError("the Pod has no spec.containers", source=source)
    for container in containers:
        if not isinstance(container, dict):
            continue
        command = container.get("command") or []
        if container.get("name") == APISERVER or (command and str(command[0]).endswith(APISERVER)):
            return container
    raise ManifestError("no kube-apiserver container in the Pod", source=source)


def _mounts(document: dict[str, Any], container: dict[str, Any]) -> list[Mount]:
    volumes = document.get("spec", {}).get("volumes") or []
    host_paths = {
        volume.get("name"): volume["hostPath"].get("path", "")
        for volume in volumes
        if isinstance(volume, dict) and isinstance(volume.get("hostPath"), dict)
    }
    mounts: list[Mount] = []
    for mount in container.get("volumeMounts") or []:
        if not isinstance(mount, dict) or mount.get("name") not in host_paths:
            continue
        mounts.append(Mount(str(mount.get("mountPath", "")), host_paths[mount["name"]], bool(mount.get("readOnly"))))
    return mounts


def _flag_lines(text: str, names: list[str]) -> dict[str, int]:
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        for name in names:
            if re.search(rf"--{re.escape(name)}(?![A-Za-z0-9-])", line):
                lines[name] = number
    return lines


def _kubeadm(document: dict[str, Any], text: str, source: str) -> ApiserverConfig:
    server = document.get("apiServer") or {}
    if not isinstance(server, dict):
        raise ManifestError("apiServer is not a mapping", source=source)
    extra = server.get("extraArgs") or {}
    if isinstance(extra, list):
        flags = {str(item.get("name")): str(item.get("value", "")) for item in extra if isinstance(item, dict)}
    elif isinstance(extra, dict):
        flags = {str(name): str(value) for name, value in extra.items()}
    else:
        raise ManifestError("apiServer.extraArgs is neither a map nor a list", source=source)
    mounts = [
        Mount(str(volume.get("mountPath", "")), str(volume.get("hostPath", "")), bool(volume.get("readOnly")))
        for volume in server.get("extraVolumes") or []
        if isinstance(volume, dict)
    ]
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        for name in flags:
            if re.search(rf"(?<![A-Za-z0-9-]){re.escape(name)}(?![A-Za-z0-9-])", line):
                lines.setdefault(name, number)
    return ApiserverConfig(source, flags, lines, mounts, is_pod=True)


def parse_config(text: str, source: str) -> ApiserverConfig:
    """The apiserver's configuration from a manifest's, kubeadm configuration's or flags file's text."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    except yaml.YAMLError:
        documents = []
    for candidate in documents:
        if candidate.get("kind") == "ClusterConfiguration":
            return _kubeadm(candidate, text, source)
    document = documents[0] if len(documents) == 1 else None
    if isinstance(document, dict) and "spec" in document:
        if document.get("kind") != "Pod":
            raise ManifestError(f"expected a static Pod manifest, got kind {document.get('kind')!r}", source=source)
        container = _container(document, source)
        words = [str(word) for word in (container.get("command") or []) + (container.get("args") or [])]
        flags = parse_flag_words(words)
        return ApiserverConfig(source, flags, _flag_lines(text, list(flags)), _mounts(document, container), True)
    try:
        words = shlex.split(text, comments=True)
    except ValueError as error:
        raise ManifestError(f"cannot split the flags file: {error}", source=source) from None
    flags = parse_flag_words([word.removeprefix("ExecStart=") for word in words])
    if not flags:
        raise ManifestError("no --flags found", source=source)
    return ApiserverConfig(source, flags, _flag_lines(text, list(flags)))


def read_config(path: str | Path) -> ApiserverConfig:
    """Read a manifest or flags file."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ManifestError(f"cannot read: {error.strerror}", source=source) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError("not a text file", source=source) from None
    return parse_config(text, source)
