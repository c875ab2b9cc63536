"""The receiver's credentials: token files (CSV lines or YAML), certificate subjects mapped to clusters."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kubetrail.collect.auth import AuthConfigError, Authenticator, CertificateMap, TokenTable, subject_of


def scope(token: str | None = None, subject: dict[str, list[str]] | None = None) -> dict[str, object]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    extensions = {"tls": {"client_cert_subject": subject}} if subject else {}
    return {"type": "http", "headers": headers, "extensions": extensions}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_csv_lines_with_comments_and_an_any_cluster_token(tmp_path: Path) -> None:
    table = TokenTable.load(write(tmp_path, "# tokens\n\nalpha-1,prod  # the prod apiserver\nbeta-2,*\ngamma-3\n"))
    auth = Authenticator(table)
    first = auth.authenticate(scope("alpha-1"))
    assert first is not None and first.cluster == "prod" and first.method == "token"
    second = auth.authenticate(scope("beta-2"))
    third = auth.authenticate(scope("gamma-3"))
    assert second is not None and second.cluster is None
    assert third is not None and third.cluster is None
    assert auth.authenticate(scope("alpha-")) is None
    assert auth.authenticate(scope()) is None


def test_yaml_token_files(tmp_path: Path) -> None:
    table = TokenTable.load(write(tmp_path, "tokens:\n  - token: s3cret\n    cluster: edge\n  - token: other\n"))
    identity = Authenticator(table).authenticate(scope("s3cret"))
    assert identity is not None and identity.cluster == "edge"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no tokens"),
        ("# only a comment\n", "no tokens"),
        ("a,b,c\n", "TOKEN,CLUSTER"),
        ("same,x\nsame,y\n", "listed twice"),
        ("has space,x\n", "spaces"),
        ("tokens: 5\n", "must be a list"),
        ("tokens:\n  - cluster: x\n", "token"),
    ],
)
def test_bad_token_files_name_the_line_and_never_the_token(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(AuthConfigError, match=message) as caught:
        TokenTable.load(write(tmp_path, text))
    assert "same" not in str(caught.value) and "has space" not in str(caught.value)


def test_a_duplicate_is_reported_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError) as caught:
        TokenTable.load(write(tmp_path, "# header\none,x\none,y\n"))
    assert caught.value.line == 3


def test_a_world_readable_token_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "t,x\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        TokenTable.load(path)
    assert "chmod 600" in caplog.text and "t,x" not in caplog.text


def test_tokens_are_not_in_the_table_representation() -> None:
    table = TokenTable.from_pairs([("very-secret-token", "prod")])
    assert "very-secret-token" not in repr(table) and "very-secret-token" not in repr(table.entries)


def test_only_the_bearer_scheme_counts() -> None:
    auth = Authenticator(TokenTable.from_pairs([("t", None)]))
    basic = {"type": "http", "headers": [(b"authorization", b"Basic t")], "extensions": {}}
    assert auth.authenticate(basic) is None
    lower = {"type": "http", "headers": [(b"authorization", b"bearer t")], "extensions": {}}
    assert auth.authenticate(lower) is not None


def test_certificate_subjects_map_to_clusters_cn_first() -> None:
    mapping = CertificateMap.parse({"CN=apiserver-prod": "prod", "O=team-b": "staging"})
    assert mapping.cluster_for({"CN": ["apiserver-prod"], "O": ["team-b"]}) == "prod"
    assert mapping.cluster_for({"CN": ["other"], "O": ["team-b"]}) == "staging"
    assert mapping.cluster_for({"CN": ["other"]}) is None
    with pytest.raises(AuthConfigError, match=r"^client-cert-clusters: 'apiserver-prod' is not a subject") as caught:
        CertificateMap.parse({"apiserver-prod": "prod"})
    assert "CN=" in caught.value.hint


def test_a_verified_certificate_authenticates_and_a_token_is_tried_first() -> None:
    auth = Authenticator(TokenTable.from_pairs([("t", "tokens")]), CertificateMap.parse({"CN=a": "certs"}))
    by_certificate = auth.authenticate(scope(subject={"CN": ["a"]}))
    assert by_certificate is not None and by_certificate.cluster == "certs" and by_certificate.method == "certificate"
    both = auth.authenticate(scope("t", {"CN": ["a"]}))
    assert both is not None and both.cluster == "tokens"
    wrong_token = auth.authenticate(scope("x", {"CN": ["a"]}))
    assert wrong_token is not None and wrong_token.method == "certificate"
    assert auth.authenticate(scope()) is None


def test_no_configuration_means_no_authentication_required() -> None:
    assert not Authenticator().required
    assert Authenticator(TokenTable.from_pairs([("t", None)])).required


def test_subject_of_a_peer_certificate_dict() -> None:
    peer = {"subject": ((("commonName", "kube-apiserver"),), (("organizationName", "prod"),))}
    assert subject_of(peer) == {"CN": ["kube-apiserver"], "O": ["prod"]}
    assert subject_of(None) == {}
