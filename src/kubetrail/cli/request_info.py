"""`kubetrail request-info METHOD URL`: how kube-apiserver reads a request's method and URL."""

from __future__ import annotations

import json

import click

from kubetrail.emit.requestinfo import resolve_request_info


@click.command(name="request-info")
@click.argument("method")
@click.argument("url")
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
def request_info_command(method: str, url: str, output: str) -> None:
    """Show the request attributes kube-apiserver derives from METHOD and URL.

    These are the attributes audit policies and authorizers match on: whether it is a
    resource request, the verb (list, watch, deletecollection, ...), API group and version,
    namespace, resource, subresource and object name. METHOD is upper-cased (GET, POST, ...).

    \b
    Examples:
      kubetrail request-info GET '/api/v1/namespaces/prod/pods?watch=true'
      kubetrail request-info DELETE /apis/apps/v1/namespaces/prod/deployments -o json
      kubetrail request-info GET /healthz
    """
    info = resolve_request_info(method.upper(), url)
    fields = info.as_dict()
    if output == "json":
        click.echo(json.dumps(fields))
    else:
        width = max(len(key) for key in fields)
        for key, value in fields.items():
            shown = str(value).lower() if isinstance(value, bool) else value
            click.echo(f"{key + ':':<{width + 1}} {shown}")
    if info.error:
        click.echo(f"warning: the apiserver would fail this request: {info.error}", err=True)
