"""Secret material in audit logs: find it (with location and a hash prefix, never the value) and redact it.

`scan_text`/`redact_text` work on one JSON text; `scan_file`/`redact_file` on log files; `redact_bytes`
on one event's JSON (what ingest uses with `--redact`).
"""

from kubetrail.secrets.errors import SecretsError
from kubetrail.secrets.files import redact_bytes, redact_file, scan_file
from kubetrail.secrets.patterns import REDACTED_PREFIX, find_credentials
from kubetrail.secrets.scan import Finding, hash_prefix, marker, redact_text, scan_text

__all__ = [
    "REDACTED_PREFIX",
    "Finding",
    "SecretsError",
    "find_credentials",
    "hash_prefix",
    "marker",
    "redact_bytes",
    "redact_file",
    "redact_text",
    "scan_file",
    "scan_text",
]
