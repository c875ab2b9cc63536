"""Deterministic identifiers drawn from the stream's own random source (never the global one)."""

from __future__ import annotations

import random
import string

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated names
_HEX = "0123456789abcdef"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in _HEX}


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID string (RFC 4122 variant), as the apiserver uses for auditID and object uids."""
    text = rng.randbytes(16).hex()
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-{text[20:]}"


def name_suffix(rng: random.Random, length: int = 5) -> str:
    """A generated-name suffix such as the `x7k2p` of `web-5d9c7b6f4-x7k2p`."""
    return "".join(rng.choices(_SUFFIX_ALPHABET, k=length))


def template_hash(rng: random.Random) -> str:
    """A pod-template-hash such as `5d9c7b6f4`."""
    return "".join(rng.choices(_SUFFIX_ALPHABET, k=rng.choice((9, 10))))


def hex_string(rng: random.Random, length: int) -> str:
    """Random lowercase hex, e.g. for container IDs and image digests."""
    return "".join(rng.choices(_HEX, k=length))


def token_like(rng: random.Random, length: int) -> str:
    """A random base64url-looking string: clearly fake material shaped like a credential."""
    return "".join(rng.choices(string.ascii_letters + string.digits + "-_", k=length))
