"""Request attributes: what the apiserver's policy checker looks at for one request."""

from __future__ import annotations

from dataclasses import dataclass

from kubetrail.model.event import Event


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """The authorizer attributes a policy rule matches on.

    A resource request names its API group, resource, subresource, namespace (`""` when
    cluster-scoped) and object name; a non-resource request (e.g. `/healthz`) has a path.
    """

    user: str = ""
    groups: tuple[str, ...] = ()
    verb: str = ""
    is_resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


def attributes_from_event(event: Event) -> RequestAttributes:
    """The attributes of the request an event records (the authenticated user, not the impersonated one).

    An event without `objectRef` is a non-resource request whose path is its requestURI's path.
    """
    ref = event.objectRef
    user = event.user
    if ref is None:
        return RequestAttributes(
            user=user.username,
            groups=tuple(user.groups),
            verb=event.verb,
            is_resource_request=False,
            path=event.path,
        )
    return RequestAttributes(
        user=user.username,
        groups=tuple(user.groups),
        verb=event.verb,
        is_resource_request=True,
        namespace=ref.namespace,
        api_group=ref.apiGroup,
        resource=ref.resource,
        subresource=ref.subresource,
        name=ref.name,
        path=event.path,
    )
