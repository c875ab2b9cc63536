"""The intake: every door's bytes become typed `audit.k8s.io/v1` events here, and only here.

A door (the webhook receiver, the file tailer, the bus worker, a cloud source, a command reading FILEs) moves
bytes; the intake decides what they mean. It inflates gzip (any number of members), tells the format from
the first bytes, decodes each event once into a typed Event that keeps the JSON it came from, maps managed
clouds' records (EKS, GKE, AKS) to the apiserver's own events, and reports every record it refuses as a
located Rejection (file, line or item, and why) instead of failing the rest of its batch.

    from kubetrail.intake import expand_inputs, read_paths
    for path, batch in read_paths(expand_inputs(["audit.log", "eks-export.gz"])):
        batch.events, batch.raws, batch.rejected, batch.skipped, batch.cluster

Everything except `files` (the edge with the file system) is pure.
"""

from typing import TYPE_CHECKING

# `sniff` is both a module and its function: import it now so the function, not the module, is the name.
from kubetrail.intake.sniff import FORMATS, SNIFF_BYTES, Format, sniff
from kubetrail.lazy import lazy_names

if TYPE_CHECKING:
    from kubetrail.intake.batch import BATCH_EVENTS, Batch, IntakeError, Rejection, Tally, short_reason
    from kubetrail.intake.body import decode_body
    from kubetrail.intake.files import (
        STDIN,
        expand_inputs,
        format_of,
        input_size,
        open_inflated,
        order_rotated,
        peek,
        read_events,
        read_path,
        read_paths,
    )
    from kubetrail.intake.inflate import GZIP_MAGIC, GzipError, InflateLimitError, gunzip, is_gzip, open_gzip
    from kubetrail.intake.native import NotJsonError, add_line, repairing
    from kubetrail.intake.read import parse_format, read_bytes, read_stream

# Each name is imported from its module on first use, so a command that needs only the format names
# (FORMATS) or the batch types does not load every cloud mapping and YAML.
_HOMES = {
    "BATCH_EVENTS": "kubetrail.intake.batch",
    "Batch": "kubetrail.intake.batch",
    "GZIP_MAGIC": "kubetrail.intake.inflate",
    "GzipError": "kubetrail.intake.inflate",
    "InflateLimitError": "kubetrail.intake.inflate",
    "IntakeError": "kubetrail.intake.batch",
    "NotJsonError": "kubetrail.intake.native",
    "Rejection": "kubetrail.intake.batch",
    "STDIN": "kubetrail.intake.files",
    "Tally": "kubetrail.intake.batch",
    "add_line": "kubetrail.intake.native",
    "decode_body": "kubetrail.intake.body",
    "expand_inputs": "kubetrail.intake.files",
    "format_of": "kubetrail.intake.files",
    "gunzip": "kubetrail.intake.inflate",
    "input_size": "kubetrail.intake.files",
    "is_gzip": "kubetrail.intake.inflate",
    "open_gzip": "kubetrail.intake.inflate",
    "open_inflated": "kubetrail.intake.files",
    "order_rotated": "kubetrail.intake.files",
    "parse_format": "kubetrail.intake.read",
    "peek": "kubetrail.intake.files",
    "read_bytes": "kubetrail.intake.read",
    "read_events": "kubetrail.intake.files",
    "read_path": "kubetrail.intake.files",
    "read_paths": "kubetrail.intake.files",
    "read_stream": "kubetrail.intake.read",
    "repairing": "kubetrail.intake.native",
    "short_reason": "kubetrail.intake.batch",
}


__getattr__ = lazy_names(__name__, _HOMES)


__all__ = [
    "BATCH_EVENTS",
    "FORMATS",
    "GZIP_MAGIC",
    "SNIFF_BYTES",
    "STDIN",
    "Batch",
    "Format",
    "GzipError",
    "InflateLimitError",
    "IntakeError",
    "NotJsonError",
    "Rejection",
    "Tally",
    "add_line",
    "decode_body",
    "expand_inputs",
    "format_of",
    "gunzip",
    "input_size",
    "is_gzip",
    "open_gzip",
    "open_inflated",
    "order_rotated",
    "parse_format",
    "peek",
    "read_bytes",
    "read_events",
    "read_path",
    "read_paths",
    "read_stream",
    "repairing",
    "short_reason",
    "sniff",
]
