"""The local gateway's JWT checks: each refusal says why, the tenant claim must be a JSON string, and
the key lives in one place whatever the current directory."""

from __future__ import annotations

import time

import jwt
import pytest

from impex.local.auth import LOCAL_AUDIENCE, LOCAL_ISSUER, LocalIssuer, Unauthorized, impex_home


@pytest.fixture
def issuer(tmp_path) -> LocalIssuer:
    return LocalIssuer(tmp_path / "home")


def signed(issuer: LocalIssuer, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": "dev", "iat": now, "exp": now + 60, **claims}
    return "Bearer " + jwt.encode(
        {k: v for k, v in body.items() if v is not ...}, issuer._key, algorithm="RS256"
    )


def test_a_valid_token_gives_its_claims_as_strings(issuer):
    claims = issuer.verify("Bearer " + issuer.token("acme"))
    assert claims["tenant"] == "acme" and claims["exp"].isdigit()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "no Authorization header"),
        ("Basic abc", "not 'Bearer <token>'"),
        ("Bearer not-a-jwt", "malformed"),
        (lambda i: signed(i, tenant="acme", exp=int(time.time()) - 10), "expired"),
        (lambda i: signed(i, tenant="acme", aud="someone-else"), "not for this API"),
        (lambda i: signed(i, tenant="acme", iss="https://evil"), "not issued by"),
        (lambda i: signed(i, tenant="acme", exp=...), "has no 'exp' claim"),
        (lambda i: signed(i), "has no 'tenant' claim"),
        (lambda i: signed(i, tenant=None), "'tenant' claim is NoneType, not a string"),
        (lambda i: signed(i, tenant=True), "'tenant' claim is bool, not a string"),
        (lambda i: signed(i, tenant=42), "'tenant' claim is int, not a string"),
        (lambda i: signed(i, tenant=["a", "b"]), "'tenant' claim is list, not a string"),
    ],
)
def test_each_refusal_says_why(issuer, header, reason):
    with pytest.raises(Unauthorized) as refused:
        issuer.verify(header(issuer) if callable(header) else header)
    assert reason in str(refused.value)


def test_another_signing_key_is_refused(issuer, tmp_path):
    other = LocalIssuer(tmp_path / "other")
    with pytest.raises(Unauthorized, match="signature is not the local issuer"):
        issuer.verify("Bearer " + other.token("acme"))


def test_the_home_is_impex_home_or_a_per_user_folder_never_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPEX_HOME", str(tmp_path / "configured"))
    assert impex_home() == tmp_path / "configured"
    monkeypatch.delenv("IMPEX_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    assert impex_home() == tmp_path / "user" / ".impex"


def test_tokens_made_in_any_directory_verify_with_the_same_key(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPEX_HOME", str(tmp_path / "home"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    token = LocalIssuer(impex_home()).token("acme")
    monkeypatch.chdir(tmp_path / "b")
    assert LocalIssuer(impex_home()).verify("Bearer " + token)["tenant"] == "acme"
    assert not (tmp_path / "a" / ".impex").exists() and not (tmp_path / "b" / ".impex").exists()
