"""Credential patterns looked for in any string an audit event carries (bodies, annotations, requestURI).

Each pattern names the part that is the secret (`value` group, else the whole match): only that part is
hashed and redacted, so `password=hunter2` keeps `password=`. Placeholders (`$(VAR)`, `${VAR}`, `<...>`,
`***`) and values already redacted are not secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

REDACTED_PREFIX = "REDACTED:sha256:"


@dataclass(frozen=True, slots=True)
class Pattern:
    """A credential pattern and the literals it starts with (`anchors`).

    `lowered` patterns (and their anchors) are written in lower case and run on the lower-cased text; they
    are tried only where an anchor occurs, since a regex search that has to try every position is several
    times slower than `str.find`.
    """

    kind: str
    regex: re.Pattern[str]
    anchors: tuple[str, ...]
    lowered: bool = False


_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA")
PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "private-key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?P<value>.+?)"
            r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
            re.DOTALL,
        ),
        ("-----BEGIN ",),
    ),
    Pattern(
        "aws-access-key-id", re.compile(r"A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA)[A-Z2-7]{16}(?![A-Z0-9])"), _AWS_PREFIXES
    ),
    Pattern(
        "aws-secret-access-key",
        re.compile(r"aws_?secret_?access_?key[\"']?\s*[=:]\s*[\"']?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"),
        ("aws",),
        lowered=True,
    ),
    Pattern("jwt", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), ("eyJ",)),
    Pattern(
        "github-token",
        re.compile(r"gh[pousr]_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    Pattern("github-token", re.compile(r"github_pat_[A-Za-z0-9_]{22,255}"), ("github_pat_",)),
    Pattern("slack-token", re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}"), ("xox",)),
    Pattern(
        "slack-webhook",
        re.compile(r"https://hooks\.slack\.com/services/(?P<value>T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+)"),
        ("https://hooks.slack.com/",),
    ),
    Pattern("url-password", re.compile(r"://[^/\s:@\"\\]{1,256}:(?P<value>[^/\s@\"\\]{1,256})@"), ("://",)),
    Pattern(
        "password-assignment",
        re.compile(
            r"(?:passw(?:or)?d|pwd|secret|api_?key|access_?token)"
            r"[\"']?\s*[=:]\s*[\"']?(?P<value>[^\s&;,\"'<>\\]{4,})"
        ),
        ("password", "passwd", "pwd", "secret", "api_key", "apikey", "access_token", "accesstoken"),
        lowered=True,
    ),
    Pattern("bearer-token", re.compile(r"Bearer\s+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)"), ("Bearer",)),
)
# Patterns that must not continue a longer word (checked by hand: a look-behind makes the search slow).
_WORD_START = frozenset({"aws-access-key-id", "jwt", "github-token", "slack-token", "bearer-token"})
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

_PLACEHOLDER = re.compile(r"^(?:\$\(.*\)|\$\{.*\}|<.*>|\*+|x+|changeme|redacted|none|null|true|false)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Match:
    """A credential inside a string: its kind and where it sits in that string."""

    kind: str
    start: int
    end: int


def is_placeholder(value: str) -> bool:
    """Empty, redacted already, or a template/placeholder rather than a credential."""
    return not value or REDACTED_PREFIX in value or bool(_PLACEHOLDER.match(value))


def _anchored(pattern: Pattern, subject: str) -> Iterator[re.Match[str]]:
    """Matches of the pattern starting at an occurrence of one of its anchors, in order of position.

    Case-sensitive patterns start with a literal, which the regex engine finds quickly by itself; the
    lower-case ones start with alternatives, found faster with `str.find`.
    """
    if not pattern.lowered:
        yield from pattern.regex.finditer(subject)
        return
    starts: list[int] = []
    for anchor in pattern.anchors:
        position = subject.find(anchor)
        while position >= 0:
            starts.append(position)
            position = subject.find(anchor, position + 1)
    end = -1
    for start in sorted(set(starts)):
        if start < end:
            continue
        found = pattern.regex.match(subject, start)
        if found is not None:
            end = found.end()
            yield found


def ascii_lower(text: str) -> str:
    """Lower-cased text of the same length (offsets stay valid)."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def find_credentials(text: str, lowered: str | None = None) -> Iterator[Match]:
    """Non-overlapping credential matches in `text`, the earliest-listed pattern first where they overlap.

    Works on decoded strings and on raw JSON text alike (values stop at a backslash, so escapes such as
    `\\u0026` end them). Case-insensitive patterns use `lowered` (computed when not given).
    """
    low = lowered if lowered is not None else ascii_lower(text)
    taken: list[tuple[int, int]] = []
    for pattern in PATTERNS:
        for found in _anchored(pattern, low if pattern.lowered else text):
            group = "value" if "value" in pattern.regex.groupindex else 0
            if pattern.kind in _WORD_START and found.start() > 0 and text[found.start() - 1] in _WORD_CHARS:
                continue
            start, end = found.span(group)
            value = text[start:end]
            if is_placeholder(value.strip()):
                continue
            if any(start < other_end and other_start < end for other_start, other_end in taken):
                continue
            taken.append((start, end))
            yield Match(pattern.kind, start, end)
