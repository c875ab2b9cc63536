"""The web UI's Starlette app: server-rendered pages under `/ui/`, read-only, escaped, behind optional auth.

Pages only read (GET); the one POST is the login form, which sets a session cookie. Every response carries a
Content-Security-Policy allowing only this origin's own script and style, so a payload hidden in an event
field can neither run nor load anything even if it escaped the templates' autoescaping.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubetrail.policy.describe import human_bytes
from kubetrail.policy.presets import PRESETS
from kubetrail.ui import charts
from kubetrail.ui.auth import COOKIE, SESSION_SECONDS, UIAuth
from kubetrail.ui.cascade_view import view as cascade_view
from kubetrail.ui.data import AROUND, PRIORITIES, WINDOWS, Row, UIData
from kubetrail.ui.links import alert_entities, linkify, quoted
from kubetrail.ui.policy_view import SAMPLE_EVENTS, simulate_sample
from kubetrail.ui.search import SearchError

PREFIX = "/ui"
PAGE_SIZE = 50
MAX_PAGE = 1000
MAX_FORM_BYTES = 4096
_HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def _time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _url(path: str, **params: object) -> str:
    query = urlencode({key: value for key, value in params.items() if value not in (None, "")})
    return f"{PREFIX}{path}" + (f"?{query}" if query else "")


def _mitre_url(technique: str) -> str:
    """ATT&CK's page of a technique (`T1078.001` → …/techniques/T1078/001/); '' for anything else."""
    if not re.fullmatch(r"T\d{4}(\.\d{3})?", technique):
        return ""
    return "https://attack.mitre.org/techniques/" + technique.replace(".", "/") + "/"


_BOUND_TERM = re.compile(r'(?:^|\s)(?:since|until)=(?:"(?:[^"\\]|\\.)*"|\S+)')


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_term(text: str, field: str, value: object) -> str:
    """The filter text with one more `field=value` term (the value quoted when needed)."""
    term = f"{field}={quoted(str(value))}"
    return f"{text.strip()} {term}".strip()


def with_range(text: str, since: datetime, until: datetime) -> str:
    """The filter text with its `since`/`until` terms replaced by the given range."""
    kept = _BOUND_TERM.sub(" ", text).strip()
    return f"{kept} since={_stamp(since)} until={_stamp(until)}".strip()


def _cascade_available() -> bool:
    """Whether the cascade inference is installed (the request page shows its section only then)."""
    import importlib.util

    try:
        return importlib.util.find_spec("kubetrail.investigate.cascade") is not None
    except ImportError:
        return False


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["time"] = _time
    environment.filters["bytes"] = human_bytes
    environment.globals.update(
        identity_link=lambda user: _url("/identity", user=user),
        search_link=lambda field: lambda value: _url("/search", q=f"{field}={quoted(value)}"),
        request_link=lambda row: _url("/request", id=row.audit_id or "", t=row.time.isoformat()),
        with_term=with_term,
        with_range=with_range,
        range_link=lambda text: lambda since, until: _url("/search", q=with_range(text, since, until)),
        linkify=linkify,
        quoted=quoted,
        alert_entities=UI._entities,
    )
    environment.globals.update(
        mitre_url=_mitre_url, url=_url, charts=charts, priorities=PRIORITIES, windows=(*WINDOWS, "all")
    )
    return environment


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _int(request: Request, name: str, default: int = 0, maximum: int = MAX_PAGE) -> int:
    value = request.query_params.get(name, "")
    return min(int(value), maximum) if value.isdigit() else default


class UI:
    """The pages, each a plain function of the request."""

    def __init__(self, data: UIData, auth: UIAuth | None) -> None:
        self.data = data
        self.auth = auth
        self.environment = _environment()

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.update(request=request, authenticated=self.auth is not None)
        return HTMLResponse(self.environment.get_template(template).render(**context), status_code=status)

    def overview(self, request: Request) -> Response:
        window = request.query_params.get("window", "24h")
        if window not in WINDOWS and window != "all":
            window = "24h"
        return self.render(request, "overview.html", overview=self.data.overview(window))

    def search(self, request: Request) -> Response:
        text = request.query_params.get("q", "")
        page_number = _int(request, "page")
        try:
            page = self.data.search(text, page=page_number, size=PAGE_SIZE)
            stats = self.data.search_stats(text)
        except SearchError as error:
            return self.render(request, "search.html", status=400, q=text, error=error, page=None, stats=None)
        except duckdb.Error as error:
            failed = SearchError(str(error).splitlines()[0], hint="check the values' types against docs/query.md")
            return self.render(request, "search.html", status=400, q=text, error=failed, page=None, stats=None)
        # a filter without since=/until= covers all stored data: say so when none of it is recent
        span = None if _BOUND_TERM.search(text) else self.data.data_span()
        return self.render(request, "search.html", q=text, error=None, page=page, stats=stats, span=span)

    def request(self, request: Request) -> Response:
        """One request: its stages merged, what it caused (for a write), and every stage's JSON."""
        audit_id = request.query_params.get("id", "")
        near = _moment(request.query_params.get("t", ""))
        summary = self.data.request(audit_id, near) if audit_id else None
        if summary is None:
            return self.render(request, "error.html", status=404, message=f"no request with auditID {audit_id[:100]!r}")
        stages = self._stages(audit_id, summary.time)
        available = summary.is_write and _cascade_available()
        cascade = self._cascade(audit_id, summary.time) if available else None
        return self.render(
            request,
            "request.html",
            audit_id=audit_id,
            summary=summary,
            stages=stages,
            cascade=cascade,
            cascade_available=available,
            around=AROUND,
        )

    def _cascade(self, audit_id: str, near: datetime) -> Any:
        """What the request caused, when the cascade inference is available (None otherwise)."""
        try:
            from kubetrail.investigate.cascade import build_cascade
        except ImportError:
            return None
        from kubetrail.query.errors import QueryError
        from kubetrail.query.source import Source

        cursor = self.data.cursor()
        try:
            source = Source(cursor, description="ui", relation="events")
            return cascade_view(build_cascade(source, audit_id, near=near))
        except (QueryError, duckdb.Error):
            return None
        finally:
            cursor.close()

    def identity(self, request: Request) -> Response:
        user = request.query_params.get("user", "")
        if not user:
            return self.render(request, "error.html", status=400, message="which user? pass ?user=NAME")
        page = self.data.identity(user, page=_int(request, "page"), size=PAGE_SIZE)
        summary = self.data.identity_summary(user)
        return self.render(
            request,
            "identity.html",
            user=user,
            page=page,
            summary=summary,
            profile=self.data.profile(user),
            alerts=self.data.alerts_for_user(user),
        )

    def object(self, request: Request) -> Response:
        params = request.query_params
        resource, namespace, name = params.get("resource", ""), params.get("ns", ""), params.get("name", "")
        ref = params.get("ref", "")
        if ref:
            parts = ref.split("/")
            if len(parts) == 3:
                resource, namespace, name = parts
            elif len(parts) == 2:
                resource, namespace, name = parts[0], "", parts[1]
        if not resource or not name:
            recent = [] if ref else self.data.recent_objects()
            return self.render(
                request,
                "object.html",
                status=400 if ref else 200,
                ref=ref,
                page=None,
                resource="",
                ns="",
                name="",
                recent=recent,
            )
        page = self.data.object_history(resource, namespace, name, page=_int(request, "page"), size=PAGE_SIZE)
        return self.render(request, "object.html", ref=ref, page=page, resource=resource, ns=namespace, name=name)

    def policy(self, request: Request) -> Response:
        preset = request.query_params.get("preset", "recommended")
        if preset not in PRESETS:
            return self.render(
                request, "error.html", status=400, message=f"no such preset; choose from {', '.join(PRESETS)}"
            )
        view = simulate_sample(preset, self.data.recent_event_json(SAMPLE_EVENTS))
        return self.render(request, "policy.html", view=view, presets=PRESETS, sample=SAMPLE_EVENTS)

    def alerts(self, request: Request) -> Response:
        priority = request.query_params.get("priority", "")
        rule = request.query_params.get("rule", "")
        page = self.data.alerts(priority=priority, rule=rule, page=_int(request, "page"), size=PAGE_SIZE)
        return self.render(request, "alerts.html", alerts=page, priority=priority, rule=rule)

    def alert(self, request: Request) -> Response:
        audit_id = request.query_params.get("id", "")
        rule = request.query_params.get("rule", "")
        alert = self.data.alert(audit_id, rule)
        if alert is None:
            return self.render(request, "error.html", status=404, message="no such alert")
        moment = _aware(alert.time)
        summary = self.data.request(audit_id, moment) if audit_id else None
        user = (summary.user if summary else None) or str(alert.output_fields.get("ka.user.name") or "")
        around = self.data.around(user, moment) if user else None
        history = None
        if summary is not None and summary.resource and summary.name:
            history = self.data.object_history(
                summary.resource, summary.namespace or "", summary.name, page=0, size=PAGE_SIZE
            )
        entities = self._entities(alert.output_fields)
        if summary is not None:
            entities += [
                (value, _url("/identity", user=value), "user-link")
                for value in (summary.user, summary.impersonated_user)
                if value
            ]
            if summary.resource and summary.name:
                target = _url("/object", resource=summary.resource, ns=summary.namespace or "", name=summary.name)
                entities.append((summary.name, target, "object"))
            if summary.namespace:
                entities.append(
                    (summary.namespace, _url("/search", q=f"ns={quoted(summary.namespace)}"), "namespace-link")
                )
        return self.render(
            request,
            "alert.html",
            alert=alert,
            entities=entities,
            summary=summary,
            user=user,
            around=around,
            history=history,
            reach=int(AROUND.total_seconds() // 60),
            fields=json.dumps(alert.output_fields, indent=2, default=str),
            stages=self._stages(audit_id, moment),
        )

    @staticmethod
    def _entities(fields: dict[str, Any]) -> list[tuple[str, str, str]]:
        return alert_entities(
            fields, identity=f"{PREFIX}/identity", object_url=f"{PREFIX}/object", search=f"{PREFIX}/search"
        )

    def _stages(self, audit_id: str, near: datetime | None) -> list[tuple[Row, str]]:
        """The event's stages, looked for near its time first (the links carry it), then anywhere."""
        if not audit_id:
            return []
        found = self.data.event(audit_id, near) if near is not None else []
        return found or self.data.event(audit_id)

    # ----- login ----------------------------------------------------------------------------------------

    def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", error="", next=_safe_next(request.query_params.get("next", "")))

    async def login(self, request: Request) -> Response:
        if self.auth is None:
            return RedirectResponse(f"{PREFIX}/", status_code=303)
        body = await _bounded_body(request, MAX_FORM_BYTES)
        if body is None:
            return PlainTextResponse("the login form is larger than 4 KiB\n", status_code=413)
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        target = _safe_next(form.get("next", ""))
        identity = None
        if form.get("token"):
            identity = self.auth.token_identity(form["token"])
        elif form.get("username"):
            identity = self.auth.user_identity(form["username"], form.get("password", ""))
        if identity is None:
            return self.render(request, "login.html", status=401, error="not accepted", next=target)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            self.auth.start_session(identity),
            max_age=SESSION_SECONDS,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def logout(self, request: Request) -> Response:
        if self.auth is not None:
            self.auth.end_session(request.cookies.get(COOKIE, ""))
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, read only up to `limit` bytes (None beyond it: the rest is never held in memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _safe_next(target: str) -> str:
    """Only paths inside the UI: an open redirect after login would hand users to anyone's page."""
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


class _Guard:
    """Security headers on every answer; a 401 (login page) for requests without valid credentials."""

    def __init__(self, app: ASGIApp, ui: UI) -> None:
        self.app = app
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        auth = self.ui.auth
        path: str = scope["path"]
        if auth is not None and not path.startswith((f"{PREFIX}/static/", f"{PREFIX}/login")):
            request = Request(scope)
            if auth.check(request.headers.get("authorization"), request.cookies.get(COOKIE)) is None:
                target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
                response = self.ui.render(request, "login.html", status=401, error="", next=_safe_next(target))
                response.headers["www-authenticate"] = auth.challenge
                await response(scope, receive, with_headers)
                return
        if scope["method"] not in ("GET", "HEAD") and path != f"{PREFIX}/login":
            await Response("read-only: only GET is allowed", 405, headers={"allow": "GET, HEAD"})(
                scope, receive, with_headers
            )
            return
        await self.app(scope, receive, with_headers)


def build_ui(data: UIData, auth: UIAuth | None = None) -> ASGIApp:
    """The UI as an ASGI app answering paths under `/ui/` (and `/`, redirected there)."""
    ui = UI(data, auth)
    routes = [
        Route("/", ui.overview),
        Route("/search", ui.search),
        Route("/event", ui.request),
        Route("/request", ui.request),
        Route("/identity", ui.identity),
        Route("/object", ui.object),
        Route("/alerts", ui.alerts),
        Route("/policy", ui.policy),
        Route("/alert", ui.alert),
        Route("/login", ui.login_form, methods=["GET"]),
        Route("/login", ui.login, methods=["POST"]),
        Route("/logout", ui.logout),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=[
            Route("/", lambda request: RedirectResponse(f"{PREFIX}/", status_code=302)),
            Route(PREFIX, lambda request: RedirectResponse(f"{PREFIX}/", status_code=302)),
            Mount(PREFIX, routes=routes),
        ]
    )
    return _Guard(app, ui)


def is_ui_path(path: str) -> bool:
    """Whether `serve` hands a request to the UI rather than the receiver."""
    return path == "/" or path == PREFIX or path.startswith(f"{PREFIX}/")


class WithUI:
    """`serve`'s one ASGI app when the UI shares the receiver's port: UI paths to the UI, the rest unchanged."""

    def __init__(self, receiver: ASGIApp, ui: ASGIApp) -> None:
        self.receiver = receiver
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_ui_path(scope["path"]):
            await self.ui(scope, receive, send)
        else:
            await self.receiver(scope, receive, send)
