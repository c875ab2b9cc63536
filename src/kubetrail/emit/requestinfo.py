"""Request info from an HTTP method and URL, resolved exactly as kube-apiserver's RequestInfoFactory does.

The rules (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go, v1.33): paths under `/api/VERSION`
and `/apis/GROUP/VERSION` are resource requests; `watch` and `proxy` may prefix the resource as
a verb; `namespaces/NAME/…` sets the namespace unless followed by a namespace subresource (`status`,
`finalize`); the HTTP method gives the verb, and a GET without a name becomes `list` or `watch` from
the query's list options, where `fieldSelector=metadata.name=X` names the object; a DELETE without a
name becomes `deletecollection`. Anything else is a non-resource request whose verb is the lowercase
HTTP method. URLs are parsed and unescaped the way Go's net/url does, query options the way the
apiserver decodes `ListOptions` (label and field selector grammars included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kubetrail.errors import KubetrailError

DEFAULT_API_PREFIXES = frozenset({"api", "apis"})
DEFAULT_GROUPLESS_API_PREFIXES = frozenset({"api"})

_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_SPECIAL_VERBS_NO_SUBRESOURCES = frozenset({"proxy"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_VERBS_WITH_SELECTORS = frozenset({"list", "watch", "deletecollection"})
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}

_LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
_LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})


class RequestInfoError(KubetrailError):
    """A URL that Go's net/url (and so the apiserver) would reject."""

    def __init__(self, message: str, *, url: str, hint: str = "") -> None:
        super().__init__(f"{message}: {url!r}")
        self.url = url
        self.hint = hint or "pass a path such as /api/v1/namespaces/default/pods?watch=true"


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the apiserver knows about a request from its method and URL alone."""

    is_resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()
    field_selector: str = ""
    label_selector: str = ""
    error: str = ""

    @property
    def is_long_running(self) -> bool:
        """True for requests kube-apiserver treats as long-running (watch, proxy, exec, attach, log, portforward)."""
        if self.verb in _LONG_RUNNING_VERBS:
            return True
        if self.is_resource_request:
            return self.subresource in _LONG_RUNNING_SUBRESOURCES
        return self.path.startswith("/debug/pprof/")

    def as_dict(self) -> dict[str, object]:
        """The fields `kubetrail request-info -o json` prints, under the apiserver's JSON names."""
        return {
            "isResourceRequest": self.is_resource_request,
            "verb": self.verb,
            "apiGroup": self.api_group,
            "apiVersion": self.api_version,
            "namespace": self.namespace,
            "resource": self.resource,
            "subresource": self.subresource,
            "name": self.name,
            "path": self.path,
        }


# --- URLs, as Go's net/url parses them ------------------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_HEX = frozenset("0123456789abcdefABCDEF")


def _unescape(text: str, *, query: bool) -> str | None:
    """Go's url.PathUnescape / QueryUnescape: None on a malformed `%` escape."""
    if "%" not in text and not (query and "+" in text):
        return text
    out = bytearray()
    i = 0
    length = len(text)
    while i < length:
        char = text[i]
        if char == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                return None
            out.append(int(pair, 16))
            i += 3
            continue
        if char == "+" and query:
            out.append(0x20)
        else:
            out += char.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def split_url(url: str) -> tuple[str, str]:
    """The decoded path and the raw query of a request URL (absolute or a bare `/path?query`)."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise RequestInfoError("invalid control character in URL", url=url)
    rest = url.split("#", 1)[0]
    scheme = ""
    found = _SCHEME.match(rest)
    if found:
        scheme = found.group(0)[:-1]
        rest = rest[found.end() :]
    elif rest.startswith(":"):
        raise RequestInfoError("missing protocol scheme", url=url)
    rest, _, query = rest.partition("?")
    if scheme and not rest.startswith("/"):
        return "", query  # opaque URL such as `mailto:x`: no path
    if not scheme and rest and not rest.startswith("/") and ":" in rest.split("/", 1)[0]:
        raise RequestInfoError("first path segment in URL cannot contain colon", url=url)
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority_end = rest.find("/", 2)
        rest = rest[authority_end:] if authority_end >= 0 else ""
    path = _unescape(rest, query=False)
    if path is None:
        raise RequestInfoError("invalid URL escape in path", url=url)
    return path, query


def parse_query(query: str) -> dict[str, list[str]]:
    """Go's url.ParseQuery, keeping what it keeps: `&`-separated pairs; pairs with `;` or bad escapes are skipped."""
    values: dict[str, list[str]] = {}
    for piece in query.split("&"):
        if not piece or ";" in piece:
            continue
        raw_key, _, raw_value = piece.partition("=")
        key = _unescape(raw_key, query=True)
        value = _unescape(raw_value, query=True)
        if key is None or value is None:
            continue
        values.setdefault(key, []).append(value)
    return values


# --- list options, as the apiserver decodes them ---------------------------------------------------

_INT64 = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _parse_int64(text: str) -> bool:
    if not _INT64.fullmatch(text):
        return False
    return _INT64_MIN <= int(text) <= _INT64_MAX


def _go_bool(value: str) -> bool:
    """Only `false` and `0` (any case) are false; anything else, even empty, is true."""
    return value.lower() not in ("false", "0")


@dataclass(frozen=True, slots=True)
class _ListOptions:
    watch: bool
    name_from_field_selector: str | None


def _decode_list_options(values: dict[str, list[str]]) -> _ListOptions | None:
    """None when the query does not decode as ListOptions (the apiserver then falls back to `watch` alone)."""
    for key in ("timeoutSeconds", "limit"):
        if key in values and not _parse_int64(values[key][0]):
            return None
    label_selector = values.get("labelSelector", [""])[0]
    if not _label_selector_parses(label_selector):
        return None
    terms = _parse_field_selector(values.get("fieldSelector", [""])[0])
    if terms is None:
        return None
    watch = "watch" in values and _go_bool(values["watch"][0])
    return _ListOptions(watch=watch, name_from_field_selector=_exact_match(terms, "metadata.name"))


# Field selectors: k8s.io/apimachinery/pkg/fields (`a=b,c!=d`, with `\,` `\=` `\\` escapes in values).

_FIELD_OPERATORS = ("!=", "==", "=")


def _split_terms(selector: str) -> list[str]:
    if not selector:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for index, char in enumerate(selector):
        if in_slash:
            in_slash = False
        elif char == "\\":
            in_slash = True
        elif char == ",":
            terms.append(selector[start:index])
            start = index + 1
    terms.append(selector[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for index in range(len(term)):
        for operator in _FIELD_OPERATORS:
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator) :]
    return None


def _unescape_field_value(value: str) -> str | None:
    if not any(char in value for char in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for char in value:
        if in_slash:
            if char not in "\\,=":
                return None
            out.append(char)
            in_slash = False
        elif char == "\\":
            in_slash = True
        elif char in ",=":
            return None
        else:
            out.append(char)
    return None if in_slash else "".join(out)


def _parse_field_selector(selector: str) -> list[tuple[str, str, str]] | None:
    """The selector's terms (field, operator, value) in the apiserver's sorted order, or None if invalid."""
    terms: list[tuple[str, str, str]] = []
    for part in sorted(_split_terms(selector)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            return None
        field, operator, raw_value = split
        value = _unescape_field_value(raw_value)
        if value is None:
            return None
        terms.append((field, operator, value))
    return terms


def _exact_match(terms: Iterable[tuple[str, str, str]], field: str) -> str | None:
    for term_field, operator, value in terms:
        if term_field == field and operator != "!=":
            return value
    return None


def _valid_path_segment_name(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


# Label selectors: k8s.io/apimachinery/pkg/labels (only whether one parses matters here).

_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_SPECIAL_SYMBOLS = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_EOS = "\0"

(_ERROR, _END, _CLOSE, _COMMA, _NOT, _DOUBLE_EQ, _EQ, _GT, _IDENT, _IN, _LT, _NOT_EQ, _NOT_IN, _OPEN) = range(14)
_TOKENS = {
    ")": _CLOSE,
    ",": _COMMA,
    "!": _NOT,
    "==": _DOUBLE_EQ,
    "=": _EQ,
    ">": _GT,
    "in": _IN,
    "<": _LT,
    "!=": _NOT_EQ,
    "notin": _NOT_IN,
    "(": _OPEN,
}


def _valid_label_key(key: str) -> bool:
    parts = key.split("/")
    if len(parts) > 2:
        return False
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            return False
    name = parts[-1]
    return 0 < len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def _valid_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


def _lex(text: str) -> list[tuple[int, str]]:
    """The label selector lexer, including its quirks (a NUL ends a token; `!` and `=` combine greedily)."""
    position = 0
    items: list[tuple[int, str]] = []

    def read() -> str:
        nonlocal position
        if position < len(text):
            position += 1
            return text[position - 1]
        return _EOS

    while True:
        char = read()
        while char in _WHITESPACE:
            char = read()
        if char == _EOS:
            items.append((_END, ""))
            return items
        position -= 1
        if char in _SPECIAL_SYMBOLS:
            buffer = ""
            last: tuple[int, str] | None = None
            while True:
                char = read()
                if char == _EOS:
                    break
                if char not in _SPECIAL_SYMBOLS:
                    position -= 1
                    break
                buffer += char
                if buffer in _TOKENS:
                    last = (_TOKENS[buffer], buffer)
                elif last is not None:
                    position -= 1
                    break
            items.append(last if last is not None else (_ERROR, buffer))
        else:
            buffer = ""
            while True:
                char = read()
                if char == _EOS:
                    break
                if char in _SPECIAL_SYMBOLS or char in _WHITESPACE:
                    position -= 1
                    break
                buffer += char
            items.append((_TOKENS.get(buffer, _IDENT), buffer))


class _LabelParser:
    """Recursive descent over the lexed tokens; `parse` is False on any syntax or validation error."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def _token(self, index: int, values: bool) -> int:
        token = self.items[min(index, len(self.items) - 1)][0]
        if values and token in (_IN, _NOT_IN):
            return _IDENT
        return token

    def lookahead(self, values: bool = True) -> int:
        return self._token(self.position, values)

    def consume(self, values: bool = True) -> tuple[int, str]:
        index = min(self.position, len(self.items) - 1)
        self.position += 1
        return self._token(index, values), self.items[index][1]

    def parse(self) -> bool:
        while True:
            token = self.lookahead()
            if token == _END:
                return True
            if token not in (_IDENT, _NOT) or not self._requirement():
                return False
            token, _ = self.consume()
            if token == _END:
                return True
            if token != _COMMA or self.lookahead() not in (_IDENT, _NOT):
                return False

    def _requirement(self) -> bool:
        token, key = self.consume()
        negated = token == _NOT
        if negated:
            token, key = self.consume()
        if token != _IDENT or not _valid_label_key(key):
            return False
        if negated or self.lookahead() in (_END, _COMMA):
            return True
        operator, _ = self.consume(values=False)
        if operator in (_IN, _NOT_IN):
            found = self._value_set()
            return found is not None and all(_valid_label_value(value) for value in found)
        if operator not in (_EQ, _DOUBLE_EQ, _NOT_EQ, _GT, _LT):
            return False
        if self.lookahead() in (_END, _COMMA):
            value = ""
        else:
            token, value = self.consume()
            if token != _IDENT:
                return False
        if operator in (_GT, _LT) and not _parse_int64(value):
            return False
        return _valid_label_value(value)

    def _value_set(self) -> set[str] | None:
        token, _ = self.consume()
        if token != _OPEN:
            return None
        token = self.lookahead()
        if token == _CLOSE:
            self.consume()
            return {""}
        if token not in (_IDENT, _COMMA):
            return None
        found: set[str] = set()
        while True:
            token, literal = self.consume()
            if token == _IDENT:
                found.add(literal)
                following = self.lookahead()
                if following == _CLOSE:
                    break
                if following != _COMMA:
                    return None
            elif token == _COMMA:
                if not found:
                    found.add("")
                following = self.lookahead()
                if following == _CLOSE:
                    found.add("")
                    break
                if following == _COMMA:
                    found.add("")
            else:
                return None
        token, _ = self.consume()
        return found if token == _CLOSE else None


def _label_selector_parses(selector: str) -> bool:
    return _LabelParser(selector).parse()


# --- the resolver ----------------------------------------------------------------------------------


def _split_path(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def resolve_request_info(
    method: str,
    url: str,
    *,
    api_prefixes: frozenset[str] = DEFAULT_API_PREFIXES,
    groupless_api_prefixes: frozenset[str] = DEFAULT_GROUPLESS_API_PREFIXES,
) -> RequestInfo:
    """Resolve METHOD and URL into RequestInfo; `error` is set where the apiserver would fail the request.

    `method` is taken as sent (HTTP methods are case-sensitive: `get` is not `GET`).
    """
    path, raw_query = split_url(url)
    non_resource = RequestInfo(is_resource_request=False, path=path, verb=method.lower())
    parts = _split_path(path)
    if len(parts) < 3 or parts[0] not in api_prefixes:
        return non_resource
    api_prefix, parts = parts[0], parts[1:]
    api_group = ""
    if api_prefix not in groupless_api_prefixes:
        if len(parts) < 3:
            return non_resource
        api_group, parts = parts[0], parts[1:]
    api_version, parts = parts[0], parts[1:]

    verb_via_path = parts[0] in _SPECIAL_VERBS
    if verb_via_path:
        if len(parts) < 2:
            return RequestInfo(
                is_resource_request=True,
                path=path,
                verb=method.lower(),
                api_prefix=api_prefix,
                api_group=api_group,
                api_version=api_version,
                error=f"unable to determine kind and namespace from url, {url}",
            )
        verb, parts = parts[0], parts[1:]
    else:
        verb = _METHOD_VERBS.get(method, "")

    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]

    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb not in _SPECIAL_VERBS_NO_SUBRESOURCES else ""

    query: dict[str, list[str]] | None = None
    if not name and verb == "get":
        query = parse_query(raw_query)
        options = _decode_list_options(query)
        if options is None:
            watch = "watch" in query and _go_bool(query["watch"][0])
            options = _ListOptions(watch=watch, name_from_field_selector=None)
        verb = "watch" if options.watch else "list"
        selected = options.name_from_field_selector
        if selected is not None and _valid_path_segment_name(selected):
            name = selected
    if not name and verb == "delete":
        verb = "deletecollection"

    field_selector = label_selector = ""
    if not verb_via_path and verb in _VERBS_WITH_SELECTORS:
        if query is None:
            query = parse_query(raw_query)
        field_selector = query.get("fieldSelector", [""])[0]
        label_selector = query.get("labelSelector", [""])[0]

    return RequestInfo(
        is_resource_request=True,
        path=path,
        verb=verb,
        api_prefix=api_prefix,
        api_group=api_group,
        api_version=api_version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
        parts=tuple(parts),
        field_selector=field_selector,
        label_selector=label_selector,
    )
