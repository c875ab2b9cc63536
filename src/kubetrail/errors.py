"""The root of kubetrail's error types: every area's errors derive from it.

The command line prints these as one clear line (a traceback only with `--debug`).
"""

from __future__ import annotations


class KubetrailError(Exception):
    """An error a user can act on: says what is wrong, where, and how to fix it."""

    hint: str = ""
