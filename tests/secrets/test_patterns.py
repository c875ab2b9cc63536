"""Credential patterns: what each finds (only the secret part) and what it must leave alone."""

from __future__ import annotations

import pytest

from kubetrail.secrets import find_credentials

FOUND = [
    ("password=hunter22", "password-assignment", "hunter22"),
    ("DB_PASSWORD: 's3cr3t-pw'", "password-assignment", "s3cr3t-pw"),
    ("--client_secret=abcd1234", "password-assignment", "abcd1234"),
    ("key AKIAIOSFODNN7EXAMPLE here", "aws-access-key-id", "AKIAIOSFODNN7EXAMPLE"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws-secret-access-key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----", "private-key", "\nMHcCAQEE\n"),
    (
        "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk",
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk",
    ),
    ("ghs_" + "x" * 36, "github-token", "ghs_" + "x" * 36),
    ("github_pat_" + "A" * 30, "github-token", "github_pat_" + "A" * 30),
    ("xoxp-123456789-abcdef", "slack-token", "xoxp-123456789-abcdef"),
    ("https://hooks.slack.com/services/T1/B2/c3d4", "slack-webhook", "T1/B2/c3d4"),
    ("mongodb://admin:pa55word@mongo:27017", "url-password", "pa55word"),
    ("Authorization: Bearer abcdefghijklmnop0123", "bearer-token", "abcdefghijklmnop0123"),
]

NOT_FOUND = [
    "secretName: db-credentials",
    "password: $(DB_PASSWORD)",
    "password=${PASSWORD}",
    "password: <your password>",
    "password=REDACTED:sha256:0123456789ab",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "XAKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJSUzI1NiJ9.only-two-parts",
    "https://example.com/path@v2",
    "ghp_tooshort",
]


@pytest.mark.parametrize(("text", "kind", "secret"), FOUND, ids=[kind for _, kind, _ in FOUND])
def test_finds_the_secret_part(text: str, kind: str, secret: str) -> None:
    matches = list(find_credentials(text))
    assert [(match.kind, text[match.start : match.end]) for match in matches] == [(kind, secret)]


@pytest.mark.parametrize("text", NOT_FOUND)
def test_leaves_alone(text: str) -> None:
    assert list(find_credentials(text)) == []
