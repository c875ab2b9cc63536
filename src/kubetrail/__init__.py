"""kubetrail: Kubernetes audit logging — policy, emit, collect, detect, store, query, report.

The public Python API is the names in `kubetrail.__all__`, importable from `kubetrail` itself
(`from kubetrail import AuditMiddleware`); they follow semantic versioning (docs/library.md, CHANGELOG.md).
Every other module is internal and may change in any release. Names load on first use (PEP 562), so
`import kubetrail` stays as light as `kubetrail --help`.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

TYPE_CHECKING = False  # not typing's: importing typing would double the cost of `import kubetrail`
if TYPE_CHECKING:
    from typing import Any

    from kubetrail.detect import load_ruleset as load_ruleset
    from kubetrail.detect.alert import Alert as Alert
    from kubetrail.detect.compiler import RuleSet as RuleSet
    from kubetrail.detect.context import EventContext as EventContext
    from kubetrail.detect.engine import Engine as Engine
    from kubetrail.detect.errors import DetectError as DetectError
    from kubetrail.detect.priority import Priority as Priority
    from kubetrail.detect.requests import OncePerRequest as OncePerRequest
    from kubetrail.detect.run import detect_events as detect_events
    from kubetrail.detect.sources import rule_sources as rule_sources
    from kubetrail.emit.backend import Backend as Backend
    from kubetrail.emit.backend import BackendError as BackendError
    from kubetrail.emit.buffered import BatchConfig as BatchConfig
    from kubetrail.emit.buffered import Buffered as Buffered
    from kubetrail.emit.builder import EventBuilder as EventBuilder
    from kubetrail.emit.builder import RequestRecorder as RequestRecorder
    from kubetrail.emit.kubeconfig import WebhookClientConfig as WebhookClientConfig
    from kubetrail.emit.kubeconfig import load_kubeconfig as load_kubeconfig
    from kubetrail.emit.logbackend import LogBackend as LogBackend
    from kubetrail.emit.logbackend import StreamWriter as StreamWriter
    from kubetrail.emit.middleware import AuditMiddleware as AuditMiddleware
    from kubetrail.emit.middleware import UserResolver as UserResolver
    from kubetrail.emit.requestinfo import RequestInfo as RequestInfo
    from kubetrail.emit.requestinfo import resolve_request_info as resolve_request_info
    from kubetrail.emit.rotation import RotatingFile as RotatingFile
    from kubetrail.emit.truncate import TruncateConfig as TruncateConfig
    from kubetrail.emit.truncate import Truncating as Truncating
    from kubetrail.emit.union import Union as Union
    from kubetrail.emit.webhook import WebhookBackend as WebhookBackend
    from kubetrail.emit.webhook import new_webhook_backend as new_webhook_backend
    from kubetrail.emit.wsgi import WSGIAuditMiddleware as WSGIAuditMiddleware
    from kubetrail.emit.wsgi import WSGIUserResolver as WSGIUserResolver
    from kubetrail.errors import KubetrailError as KubetrailError
    from kubetrail.intake.batch import Batch as Batch
    from kubetrail.intake.batch import IntakeError as IntakeError
    from kubetrail.intake.batch import Rejection as Rejection
    from kubetrail.intake.files import expand_inputs as expand_inputs
    from kubetrail.intake.files import read_events as read_events
    from kubetrail.intake.files import read_paths as read_paths
    from kubetrail.intake.read import read_bytes as read_bytes
    from kubetrail.model.codec import decode_event as decode_event
    from kubetrail.model.codec import encode_event as encode_event
    from kubetrail.model.event import Event as Event
    from kubetrail.model.event import EventList as EventList
    from kubetrail.model.event import Level as Level
    from kubetrail.model.event import ObjectReference as ObjectReference
    from kubetrail.model.event import Stage as Stage
    from kubetrail.model.event import Status as Status
    from kubetrail.model.event import UserInfo as UserInfo
    from kubetrail.model.policy import GroupResources as GroupResources
    from kubetrail.model.policy import Policy as Policy
    from kubetrail.model.policy import PolicyRule as PolicyRule
    from kubetrail.policy.attributes import RequestAttributes as RequestAttributes
    from kubetrail.policy.evaluate import AuditDecision as AuditDecision
    from kubetrail.policy.evaluate import CompiledPolicy as CompiledPolicy
    from kubetrail.policy.evaluate import compile_policy as compile_policy
    from kubetrail.policy.issues import PolicyError as PolicyError
    from kubetrail.policy.load import LoadedPolicy as LoadedPolicy
    from kubetrail.policy.load import load_policy as load_policy
    from kubetrail.policy.load import load_policy_bytes as load_policy_bytes
    from kubetrail.query.errors import QueryError as QueryError
    from kubetrail.query.source import Source as Source
    from kubetrail.query.source import open_files as open_files
    from kubetrail.query.source import open_store as open_store
    from kubetrail.store.errors import StoreError as StoreError
    from kubetrail.store.store import Store as Store
    from kubetrail.store.store import StoreOptions as StoreOptions

# public name -> the module that defines it (loaded on first use)
_EXPORTS: dict[str, str] = {
    # errors
    "KubetrailError": "kubetrail.errors",
    # the audit.k8s.io/v1 model
    "Event": "kubetrail.model.event",
    "EventList": "kubetrail.model.event",
    "Level": "kubetrail.model.event",
    "ObjectReference": "kubetrail.model.event",
    "Stage": "kubetrail.model.event",
    "Status": "kubetrail.model.event",
    "UserInfo": "kubetrail.model.event",
    "decode_event": "kubetrail.model.codec",
    "encode_event": "kubetrail.model.codec",
    "GroupResources": "kubetrail.model.policy",
    "Policy": "kubetrail.model.policy",
    "PolicyRule": "kubetrail.model.policy",
    # policy
    "LoadedPolicy": "kubetrail.policy.load",
    "load_policy": "kubetrail.policy.load",
    "load_policy_bytes": "kubetrail.policy.load",
    "PolicyError": "kubetrail.policy.issues",
    "AuditDecision": "kubetrail.policy.evaluate",
    "CompiledPolicy": "kubetrail.policy.evaluate",
    "compile_policy": "kubetrail.policy.evaluate",
    "RequestAttributes": "kubetrail.policy.attributes",
    # building events
    "EventBuilder": "kubetrail.emit.builder",
    "RequestRecorder": "kubetrail.emit.builder",
    "RequestInfo": "kubetrail.emit.requestinfo",
    "resolve_request_info": "kubetrail.emit.requestinfo",
    # backends and wrappers
    "Backend": "kubetrail.emit.backend",
    "BackendError": "kubetrail.emit.backend",
    "LogBackend": "kubetrail.emit.logbackend",
    "StreamWriter": "kubetrail.emit.logbackend",
    "RotatingFile": "kubetrail.emit.rotation",
    "WebhookBackend": "kubetrail.emit.webhook",
    "new_webhook_backend": "kubetrail.emit.webhook",
    "WebhookClientConfig": "kubetrail.emit.kubeconfig",
    "load_kubeconfig": "kubetrail.emit.kubeconfig",
    "BatchConfig": "kubetrail.emit.buffered",
    "Buffered": "kubetrail.emit.buffered",
    "TruncateConfig": "kubetrail.emit.truncate",
    "Truncating": "kubetrail.emit.truncate",
    "Union": "kubetrail.emit.union",
    # middleware
    "AuditMiddleware": "kubetrail.emit.middleware",
    "UserResolver": "kubetrail.emit.middleware",
    "WSGIAuditMiddleware": "kubetrail.emit.wsgi",
    "WSGIUserResolver": "kubetrail.emit.wsgi",
    # reading audit sources
    "Batch": "kubetrail.intake.batch",
    "IntakeError": "kubetrail.intake.batch",
    "Rejection": "kubetrail.intake.batch",
    "expand_inputs": "kubetrail.intake.files",
    "read_events": "kubetrail.intake.files",
    "read_paths": "kubetrail.intake.files",
    "read_bytes": "kubetrail.intake.read",
    # detection
    "Alert": "kubetrail.detect.alert",
    "DetectError": "kubetrail.detect.errors",
    "Engine": "kubetrail.detect.engine",
    "EventContext": "kubetrail.detect.context",
    "OncePerRequest": "kubetrail.detect.requests",
    "Priority": "kubetrail.detect.priority",
    "RuleSet": "kubetrail.detect.compiler",
    "detect_events": "kubetrail.detect.run",
    "load_ruleset": "kubetrail.detect",
    "rule_sources": "kubetrail.detect.sources",
    # store and query
    "Store": "kubetrail.store.store",
    "StoreError": "kubetrail.store.errors",
    "StoreOptions": "kubetrail.store.store",
    "QueryError": "kubetrail.query.errors",
    "Source": "kubetrail.query.source",
    "open_files": "kubetrail.query.source",
    "open_store": "kubetrail.query.source",
}

__all__ = [
    "Alert",
    "AuditDecision",
    "AuditMiddleware",
    "Backend",
    "BackendError",
    "Batch",
    "BatchConfig",
    "Buffered",
    "CompiledPolicy",
    "DetectError",
    "Engine",
    "Event",
    "EventBuilder",
    "EventContext",
    "EventList",
    "GroupResources",
    "IntakeError",
    "KubetrailError",
    "Level",
    "LoadedPolicy",
    "LogBackend",
    "ObjectReference",
    "OncePerRequest",
    "Policy",
    "PolicyError",
    "PolicyRule",
    "Priority",
    "QueryError",
    "Rejection",
    "RequestAttributes",
    "RequestInfo",
    "RequestRecorder",
    "RotatingFile",
    "RuleSet",
    "Source",
    "Stage",
    "Status",
    "Store",
    "StoreError",
    "StoreOptions",
    "StreamWriter",
    "TruncateConfig",
    "Truncating",
    "Union",
    "UserInfo",
    "UserResolver",
    "WSGIAuditMiddleware",
    "WSGIUserResolver",
    "WebhookBackend",
    "WebhookClientConfig",
    "compile_policy",
    "decode_event",
    "detect_events",
    "encode_event",
    "expand_inputs",
    "load_kubeconfig",
    "load_policy",
    "load_policy_bytes",
    "load_ruleset",
    "new_webhook_backend",
    "open_files",
    "open_store",
    "read_bytes",
    "read_events",
    "read_paths",
    "resolve_request_info",
    "rule_sources",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kubetrail' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
