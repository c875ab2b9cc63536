"""The log backend's `legacy` format: kube-apiserver's one-line text rendering of an event (`audit.EventString`).

Layout: `<requestReceivedTimestamp, RFC 3339 with nanosecond precision, trailing zeros cut>
AUDIT: id="…" stage="…" ip="…" method="…" user="…" groups="…" as="…" asgroups="…"
user-agent="…" namespace="…" uri="…" response="…"`, every value quoted as Go's `%q` does.
The first source IP stands for `ip` (`<unknown>` if none); `user` and `groups` are `<none>`
without a username; `as`/`asgroups` are `<self>`/`<lookup>` unless impersonating; `namespace`
is `<none>` for cluster-scoped and non-resource requests; `response` is the status code or
`<deferred>` before there is one. Groups are each quoted, joined by commas, then quoted again.
The apiserver prints the time in its local zone; this prints UTC (`Z`).
"""

from __future__ import annotations

from kubetrail.model.event import Event
from kubetrail.model.microtime import parse_microtime

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's strconv.Quote (`%q`): a double-quoted string with Go escapes; printable Unicode is kept."""
    if text.isprintable():
        if '"' in text or "\\" in text:
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    out = ['"']
    for char in text:
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        else:
            code = ord(char)
            if code < 0x20 or code == 0x7F:
                out.append(f"\\x{code:02x}")
            elif 0xD800 <= code <= 0xDFFF:
                out.append("\\ufffd")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def rfc3339_nano(microtime: str) -> str:
    """Go's `time.RFC3339Nano` of a MicroTime, in UTC: `2026-03-19T10:30:00.05Z`; the zero time if empty."""
    if not microtime:
        return "0001-01-01T00:00:00Z"
    if len(microtime) == 27 and microtime[19] == "." and microtime[26] == "Z" and microtime[:19].isascii():
        fraction = microtime[20:26].rstrip("0")  # already UTC MicroTime: only trim the zeros
        return f"{microtime[:19]}.{fraction}Z" if fraction else f"{microtime[:19]}Z"
    moment = parse_microtime(microtime)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    date = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    seconds = f"{date}T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    return f"{seconds}.{fraction}Z" if fraction else f"{seconds}Z"


def _quoted_list(values: list[str]) -> str:
    return ",".join(go_quote(value) for value in values)


def event_string(event: Event) -> str:
    """The one-line text form of an event, without the trailing newline."""
    user = event.user
    username = "<none>"
    groups = "<none>"
    if user.username:
        username = user.username
        if user.groups:
            groups = _quoted_list(user.groups)
    as_user = "<self>"
    as_groups = "<lookup>"
    impersonated = event.impersonatedUser
    if impersonated is not None:
        as_user = impersonated.username
        if impersonated.groups:
            as_groups = _quoted_list(impersonated.groups)
    ref = event.objectRef
    namespace = ref.namespace if ref is not None and ref.namespace else "<none>"
    response = str(event.responseStatus.code) if event.responseStatus is not None else "<deferred>"
    ip = event.sourceIPs[0] if event.sourceIPs else "<unknown>"
    q = go_quote
    return (
        f"{rfc3339_nano(event.requestReceivedTimestamp)} AUDIT: id={q(event.auditID)} stage={q(event.stage.value)} "
        f"ip={q(ip)} method={q(event.verb)} user={q(username)} groups={q(groups)} as={q(as_user)} "
        f"asgroups={q(as_groups)} user-agent={q(event.userAgent)} namespace={q(namespace)} "
        f'uri={q(event.requestURI)} response="{response}"'
    )
