"""Request info resolution, table-driven from kube-apiserver's documented RequestInfoFactory behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.emit.requestinfo import RequestInfoError, parse_query, resolve_request_info, split_url

# (method, url) -> (verb, apiGroup, apiVersion, namespace, resource, subresource, name, parts)
RESOURCE_CASES: dict[tuple[str, str], tuple[str, str, str, str, str, str, str, tuple[str, ...]]] = {
    # collections and objects, namespaced and cluster-scoped
    ("GET", "/api/v1/namespaces"): ("list", "", "v1", "", "namespaces", "", "", ("namespaces",)),
    ("GET", "/api/v1/namespaces/kube-system"): (
        "get",
        "",
        "v1",
        "kube-system",
        "namespaces",
        "",
        "kube-system",
        ("namespaces", "kube-system"),
    ),
    ("GET", "/api/v1/namespaces/prod/pods"): ("list", "", "v1", "prod", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/namespaces/prod/pods/web-0"): ("get", "", "v1", "prod", "pods", "", "web-0", ("pods", "web-0")),
    ("HEAD", "/api/v1/namespaces/prod/pods/web-0"): ("get", "", "v1", "prod", "pods", "", "web-0", ("pods", "web-0")),
    ("HEAD", "/api/v1/pods"): ("list", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/nodes/node-1"): ("get", "", "v1", "", "nodes", "", "node-1", ("nodes", "node-1")),
    ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles"): (
        "list",
        "rbac.authorization.k8s.io",
        "v1",
        "",
        "clusterroles",
        "",
        "",
        ("clusterroles",),
    ),
    ("POST", "/apis/apps/v1/namespaces/prod/deployments"): (
        "create",
        "apps",
        "v1",
        "prod",
        "deployments",
        "",
        "",
        ("deployments",),
    ),
    ("PUT", "/apis/apps/v1/namespaces/prod/deployments/web"): (
        "update",
        "apps",
        "v1",
        "prod",
        "deployments",
        "",
        "web",
        ("deployments", "web"),
    ),
    # a namespace object is "in" itself, whatever the verb (server-side apply creates one with PATCH)
    ("PATCH", "/api/v1/namespaces/fresh"): (
        "patch",
        "",
        "v1",
        "fresh",
        "namespaces",
        "",
        "fresh",
        ("namespaces", "fresh"),
    ),
    ("DELETE", "/api/v1/namespaces/prod/secrets/token"): (
        "delete",
        "",
        "v1",
        "prod",
        "secrets",
        "",
        "token",
        ("secrets", "token"),
    ),
    # DELETE without a name deletes a collection
    ("DELETE", "/api/v1/nodes"): ("deletecollection", "", "v1", "", "nodes", "", "", ("nodes",)),
    ("DELETE", "/api/v1/namespaces/prod/pods"): ("deletecollection", "", "v1", "prod", "pods", "", "", ("pods",)),
    ("DELETE", "/apis/batch/v1/namespaces/ci/jobs"): (
        "deletecollection",
        "batch",
        "v1",
        "ci",
        "jobs",
        "",
        "",
        ("jobs",),
    ),
    # subresources, including the namespace's own
    ("POST", "/api/v1/namespaces/prod/pods/web-0/exec?command=sh&stdin=true"): (
        "create",
        "",
        "v1",
        "prod",
        "pods",
        "exec",
        "web-0",
        ("pods", "web-0", "exec"),
    ),
    ("GET", "/api/v1/namespaces/prod/pods/web-0/log?follow=true"): (
        "get",
        "",
        "v1",
        "prod",
        "pods",
        "log",
        "web-0",
        ("pods", "web-0", "log"),
    ),
    ("PUT", "/apis/apps/v1/namespaces/prod/deployments/web/scale"): (
        "update",
        "apps",
        "v1",
        "prod",
        "deployments",
        "scale",
        "web",
        ("deployments", "web", "scale"),
    ),
    ("PATCH", "/api/v1/nodes/node-1/status"): (
        "patch",
        "",
        "v1",
        "",
        "nodes",
        "status",
        "node-1",
        ("nodes", "node-1", "status"),
    ),
    ("GET", "/api/v1/namespaces/prod/pods/web-0/proxy/metrics"): (
        "get",
        "",
        "v1",
        "prod",
        "pods",
        "proxy",
        "web-0",
        ("pods", "web-0", "proxy", "metrics"),
    ),
    ("PUT", "/api/v1/namespaces/prod/finalize"): (
        "update",
        "",
        "v1",
        "prod",
        "namespaces",
        "finalize",
        "prod",
        ("namespaces", "prod", "finalize"),
    ),
    ("PUT", "/api/v1/namespaces/prod/status"): (
        "update",
        "",
        "v1",
        "prod",
        "namespaces",
        "status",
        "prod",
        ("namespaces", "prod", "status"),
    ),
    # watch: by query (any value but false/0, in any case) and by the legacy path prefix
    ("GET", "/api/v1/pods?watch=true"): ("watch", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/pods?watch=1"): ("watch", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/pods?watch="): ("watch", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/pods?watch"): ("watch", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/pods?watch=yes"): ("watch", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/pods?watch=false"): ("list", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/pods?watch=FALSE"): ("list", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/namespaces/prod/pods?watch=0"): ("list", "", "v1", "prod", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/pods?watch=0&watch=1"): ("list", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/watch/pods"): ("watch", "", "v1", "", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/watch/namespaces/prod/pods"): ("watch", "", "v1", "prod", "pods", "", "", ("pods",)),
    ("GET", "/api/v1/watch/namespaces/prod/pods/web-0"): (
        "watch",
        "",
        "v1",
        "prod",
        "pods",
        "",
        "web-0",
        ("pods", "web-0"),
    ),
    ("GET", "/apis/apps/v1/watch/namespaces/prod/deployments?watch=false"): (
        "watch",
        "apps",
        "v1",
        "prod",
        "deployments",
        "",
        "",
        ("deployments",),
    ),
    # a GET on a named object is a get, whatever the query says
    ("GET", "/api/v1/namespaces/prod/pods/web-0?watch=true"): (
        "get",
        "",
        "v1",
        "prod",
        "pods",
        "",
        "web-0",
        ("pods", "web-0"),
    ),
    # proxy as a verb takes no subresource: everything after the name is the proxied path
    ("GET", "/api/v1/proxy/namespaces/prod/pods/web-0"): (
        "proxy",
        "",
        "v1",
        "prod",
        "pods",
        "",
        "web-0",
        ("pods", "web-0"),
    ),
    ("GET", "/api/v1/proxy/namespaces/prod/pods/web-0/sub/path"): (
        "proxy",
        "",
        "v1",
        "prod",
        "pods",
        "",
        "web-0",
        ("pods", "web-0", "sub", "path"),
    ),
    # fieldSelector=metadata.name=X names the object of a list or watch
    ("GET", "/api/v1/namespaces/prod/secrets?fieldSelector=metadata.name%3Dtoken"): (
        "list",
        "",
        "v1",
        "prod",
        "secrets",
        "",
        "token",
        ("secrets",),
    ),
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name=one"): (
        "list",
        "g",
        "v1",
        "",
        "things",
        "",
        "one",
        ("things",),
    ),
    ("GET", "/apis/g/v1/things?watch=true&fieldSelector=metadata.name=one"): (
        "watch",
        "g",
        "v1",
        "",
        "things",
        "",
        "one",
        ("things",),
    ),
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name==one"): (
        "list",
        "g",
        "v1",
        "",
        "things",
        "",
        "one",
        ("things",),
    ),
    ("GET", "/apis/g/v1/things?fieldSelector=spec.nodeName=n1,metadata.name=one"): (
        "list",
        "g",
        "v1",
        "",
        "things",
        "",
        "one",
        ("things",),
    ),
    # not an exact match, an unrelated field, or an invalid selector: no name
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name!=one"): (
        "list",
        "g",
        "v1",
        "",
        "things",
        "",
        "",
        ("things",),
    ),
    ("GET", "/apis/g/v1/things?fieldSelector=foo=bar"): ("list", "g", "v1", "", "things", "", "", ("things",)),
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name=one,foo"): (
        "list",
        "g",
        "v1",
        "",
        "things",
        "",
        "",
        ("things",),
    ),
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name=one,foo&watch=true"): (
        "watch",
        "g",
        "v1",
        "",
        "things",
        "",
        "",
        ("things",),
    ),
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name=one,foo&watch=false"): (
        "list",
        "g",
        "v1",
        "",
        "things",
        "",
        "",
        ("things",),
    ),
    # a name that is not a valid path segment is not used
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name=..&watch=1"): (
        "watch",
        "g",
        "v1",
        "",
        "things",
        "",
        "",
        ("things",),
    ),
    # an undecodable list option (bad limit, bad label selector) drops the name but keeps watch
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name=one&limit=ten"): (
        "list",
        "g",
        "v1",
        "",
        "things",
        "",
        "",
        ("things",),
    ),
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name=one&labelSelector=a%20b&watch=1"): (
        "watch",
        "g",
        "v1",
        "",
        "things",
        "",
        "",
        ("things",),
    ),
    ("GET", "/apis/g/v1/things?fieldSelector=metadata.name=one&labelSelector=app%20in%20(web,api),!canary&limit=5"): (
        "list",
        "g",
        "v1",
        "",
        "things",
        "",
        "one",
        ("things",),
    ),
    # DELETE on a collection stays deletecollection even when a field selector names an object
    ("DELETE", "/api/v1/namespaces/prod/pods?fieldSelector=metadata.name=web-0"): (
        "deletecollection",
        "",
        "v1",
        "prod",
        "pods",
        "",
        "",
        ("pods",),
    ),
    # unknown methods give no verb; groups may be any string; the version is not checked
    ("OPTIONS", "/api/v1/pods"): ("", "", "v1", "", "pods", "", "", ("pods",)),
    ("POST", "/apis/extensions/v1beta3/namespaces/other/pods"): (
        "create",
        "extensions",
        "v1beta3",
        "other",
        "pods",
        "",
        "",
        ("pods",),
    ),
    # absolute URLs, escaped paths and fragments are read as Go's net/url reads them
    ("GET", "https://10.0.0.1:6443/api/v1/namespaces/prod/configmaps/app?resourceVersion=0"): (
        "get",
        "",
        "v1",
        "prod",
        "configmaps",
        "",
        "app",
        ("configmaps", "app"),
    ),
    ("GET", "/api/v1/namespaces/prod/configmaps/a%2Fb"): (
        "get",
        "",
        "v1",
        "prod",
        "configmaps",
        "b",
        "a",
        ("configmaps", "a", "b"),
    ),
    ("GET", "/api/v1/pods#watch=true"): ("list", "", "v1", "", "pods", "", "", ("pods",)),
}


@pytest.mark.parametrize(("method", "url"), list(RESOURCE_CASES), ids=[f"{m} {u}" for m, u in RESOURCE_CASES])
def test_resource_requests(method: str, url: str) -> None:
    verb, group, version, namespace, resource, subresource, name, parts = RESOURCE_CASES[(method, url)]
    info = resolve_request_info(method, url)
    assert info.is_resource_request
    assert not info.error
    assert (info.verb, info.api_group, info.api_version, info.namespace) == (verb, group, version, namespace)
    assert (info.resource, info.subresource, info.name, info.parts) == (resource, subresource, name, parts)


NON_RESOURCE_CASES = {
    ("GET", "/healthz"): ("get", "/healthz"),
    ("GET", "/version"): ("get", "/version"),
    ("GET", "/metrics"): ("get", "/metrics"),
    ("POST", "/readyz/etcd"): ("post", "/readyz/etcd"),
    ("GET", "/"): ("get", "/"),
    ("GET", ""): ("get", ""),
    ("GET", "/api"): ("get", "/api"),
    ("GET", "/api/v1"): ("get", "/api/v1"),
    ("GET", "/api/v1/"): ("get", "/api/v1/"),
    ("GET", "/apis"): ("get", "/apis"),
    ("GET", "/apis/apps"): ("get", "/apis/apps"),
    ("GET", "/apis/apps/v1"): ("get", "/apis/apps/v1"),
    ("GET", "/apis/apps/v1/"): ("get", "/apis/apps/v1/"),
    ("GET", "/apis/v1/pods"): ("get", "/apis/v1/pods"),
    ("GET", "/badprefix/v1/pods"): ("get", "/badprefix/v1/pods"),
    ("PUT", "/openapi/v3/apis/apps/v1"): ("put", "/openapi/v3/apis/apps/v1"),
    ("DELETE", "/logs/kube-apiserver.log"): ("delete", "/logs/kube-apiserver.log"),
}


@pytest.mark.parametrize(("method", "url"), list(NON_RESOURCE_CASES), ids=[f"{m} {u}" for m, u in NON_RESOURCE_CASES])
def test_non_resource_requests_use_the_lowercase_method(method: str, url: str) -> None:
    verb, path = NON_RESOURCE_CASES[(method, url)]
    info = resolve_request_info(method, url)
    assert not info.is_resource_request
    assert (info.verb, info.path) == (verb, path)
    assert (info.api_group, info.api_version, info.resource, info.name) == ("", "", "", "")


@pytest.mark.parametrize("url", ["/apis/group/version/resource/name/subresource", "/apis/batch/v1/job/foo/scale"])
def test_group_paths_with_enough_segments_are_resource_requests(url: str) -> None:
    assert resolve_request_info("GET", url).is_resource_request


def test_special_verb_without_a_resource_is_an_error_the_apiserver_reports() -> None:
    info = resolve_request_info("GET", "/api/v1/watch")
    assert info.is_resource_request
    assert info.error.startswith("unable to determine kind and namespace from url")


def test_selectors_are_kept_for_list_watch_and_deletecollection_only() -> None:
    listed = resolve_request_info("GET", "/api/v1/pods?labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1")
    assert (listed.label_selector, listed.field_selector) == ("app=web", "spec.nodeName=n1")
    deleted = resolve_request_info("DELETE", "/api/v1/namespaces/a/pods?labelSelector=app%3Dweb")
    assert deleted.label_selector == "app=web"
    via_path = resolve_request_info("GET", "/api/v1/watch/pods?labelSelector=app%3Dweb")
    assert via_path.label_selector == ""
    got = resolve_request_info("GET", "/api/v1/namespaces/a/pods/p?labelSelector=app%3Dweb")
    assert got.label_selector == ""


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", "/api/v1/pods?watch=1", True),
        ("GET", "/api/v1/namespaces/a/pods/p/exec", True),
        ("POST", "/api/v1/namespaces/a/pods/p/attach", True),
        ("POST", "/api/v1/namespaces/a/pods/p/portforward", True),
        ("GET", "/api/v1/namespaces/a/pods/p/log", True),
        ("GET", "/api/v1/namespaces/a/services/s/proxy/x", True),
        ("GET", "/api/v1/proxy/nodes/n1", True),
        ("GET", "/debug/pprof/profile", True),
        ("GET", "/api/v1/pods", False),
        ("GET", "/api/v1/namespaces/a/pods/p/status", False),
        ("GET", "/healthz", False),
    ],
)
def test_long_running_requests(method: str, url: str, expected: bool) -> None:
    assert resolve_request_info(method, url).is_long_running is expected


def test_go_url_parsing() -> None:
    assert split_url("http://host:6443/api/v1/pods?watch=1#frag") == ("/api/v1/pods", "watch=1")
    assert split_url("/a+b/c%20d") == ("/a+b/c d", "")
    with pytest.raises(RequestInfoError):
        split_url("/api/v1/namespaces/%zz/pods")
    with pytest.raises(RequestInfoError):
        split_url("/api/v1/pods\n")


def test_go_query_parsing() -> None:
    assert parse_query("a=1&a=2&b=x+y&c=%41") == {"a": ["1", "2"], "b": ["x y"], "c": ["A"]}
    assert parse_query("a=1;b=2&c=3&d=%zz&&e") == {"c": ["3"], "e": [""]}


def test_cli_prints_the_fields_as_json() -> None:
    result = CliRunner().invoke(cli, ["request-info", "get", "/api/v1/namespaces/prod/pods?watch=true", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "isResourceRequest": True,
        "verb": "watch",
        "apiGroup": "",
        "apiVersion": "v1",
        "namespace": "prod",
        "resource": "pods",
        "subresource": "",
        "name": "",
        "path": "/api/v1/namespaces/prod/pods",
    }


def test_cli_text_output_and_bad_url() -> None:
    result = CliRunner().invoke(cli, ["request-info", "GET", "/healthz"])
    assert result.exit_code == 0
    assert "isResourceRequest: false" in result.output
    assert "verb:" in result.output and "get" in result.output
    bad = subprocess.run(
        [sys.executable, "-m", "kubetrail.cli.main", "request-info", "GET", "/api/v1/%zz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "invalid URL escape" in bad.stderr


def test_repeated_query_parameters_use_the_first_value() -> None:
    info = resolve_request_info(
        "GET",
        "/apis/g/v1/things?fieldSelector=metadata.name=foo&fieldSelector=metadata.name=bar"
        "&labelSelector=foo=bar&labelSelector=foo=baz",
    )
    assert (info.verb, info.name, info.field_selector, info.label_selector) == (
        "list",
        "foo",
        "metadata.name=foo",
        "foo=bar",
    )


@pytest.mark.parametrize(
    ("selector", "parses"),
    [
        ("", True),
        ("app=web", True),
        ("app==web,tier!=db", True),
        ("x in (foo,,baz),y,z notin ()", True),
        ("!canary", True),
        ("example.com/team=a", True),
        ("replicas>3", True),
        ("replicas>three", False),
        ("app=web!", False),
        ("app web", False),
        ("a in (b", False),
        ("=web", False),
        ("-bad=1", False),
        ("a/b/c=1", False),
        ("Example.com/x=1", False),
        ("app=" + "v" * 64, False),
    ],
)
def test_label_selector_validity_decides_whether_a_field_selector_name_is_kept(selector: str, parses: bool) -> None:
    url = f"/api/v1/pods?fieldSelector=metadata.name%3Dweb-0&labelSelector={quote(selector)}"
    assert resolve_request_info("GET", url).name == ("web-0" if parses else "")
