"""Bearer JWT authentication, the demo authenticator and dev tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr
from starlette.requests import Request

from fastapi_cashier.api.auth import (
    DEMO_PRINCIPAL,
    DemoAuthenticator,
    JWTAuthenticator,
    Principal,
    create_token,
    require_admin,
)
from fastapi_cashier.api.problems import CashierHTTPException
from fastapi_cashier.errors import AuthenticationError, ConfigurationError, PermissionDeniedError
from fastapi_cashier.settings import AuthSettings

SECRET = "test-secret-that-is-long-enough-for-hs256"
OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256"


def auth_settings(**overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {"jwt_secret": SecretStr(SECRET)}
    values.update(overrides)
    return AuthSettings(**values)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def future() -> int:
    return int((datetime.now(UTC) + timedelta(hours=1)).timestamp())


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[bytes, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem.decode()


def test_created_token_is_accepted() -> None:
    settings = auth_settings()
    token = create_token(settings, "user-42", email="ada@example.com")
    principal = JWTAuthenticator(settings).authenticate(f"Bearer {token}")
    assert principal == Principal(subject="user-42", email="ada@example.com", is_admin=False)


def test_scheme_is_case_insensitive() -> None:
    settings = auth_settings()
    token = create_token(settings, "user-42")
    assert JWTAuthenticator(settings).authenticate(f"bearer {token}").subject == "user-42"
    assert JWTAuthenticator(settings).authenticate(f"BEARER  {token} ").subject == "user-42"


@pytest.mark.anyio
async def test_usable_as_a_dependency_on_a_request() -> None:
    settings = auth_settings()
    token = create_token(settings, "user-42")
    request = Request({"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())]})
    assert (await JWTAuthenticator(settings)(request)).subject == "user-42"
    # As a dependency it raises an HTTPException (so host routes answer 401, not 500) that
    # carries the library error for the router's problem documents.
    with pytest.raises(CashierHTTPException) as caught:
        await JWTAuthenticator(settings)(Request({"type": "http", "headers": []}))
    assert caught.value.status_code == 401
    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}
    assert isinstance(caught.value.error, AuthenticationError)
    assert "missing bearer token" in caught.value.error.message


@pytest.mark.parametrize(
    ("roles", "is_admin"),
    [
        (["admin"], True),
        (["support", "admin"], True),
        (["support"], False),
        ([], False),
    ],
)
def test_roles_make_admins(roles: list[str], is_admin: bool) -> None:
    settings = auth_settings()
    token = create_token(settings, "u", roles=roles)
    assert JWTAuthenticator(settings).verify(token).is_admin is is_admin


def test_space_separated_roles_and_custom_admin_role() -> None:
    settings = auth_settings(admin_role="billing-admin")
    token = jwt.encode({"sub": "u", "exp": future(), "roles": "user billing-admin"}, SECRET, "HS256")
    assert JWTAuthenticator(settings).verify(token).is_admin is True
    admin_token = create_token(settings, "u", roles=["admin"])
    assert JWTAuthenticator(settings).verify(admin_token).is_admin is False


def test_malformed_roles_and_email_are_ignored() -> None:
    token = jwt.encode({"sub": "u", "exp": future(), "roles": {"admin": True}, "email": 7}, SECRET, "HS256")
    principal = JWTAuthenticator(auth_settings()).verify(token)
    assert principal == Principal(subject="u")


def test_audience_and_issuer_round_trip() -> None:
    settings = auth_settings(audience="payments", issuer="https://auth.example.com")
    token = create_token(settings, "u")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "payments"
    assert claims["iss"] == "https://auth.example.com"
    assert JWTAuthenticator(settings).verify(token).subject == "u"


def test_expired_token_is_refused() -> None:
    settings = auth_settings()
    token = create_token(
        settings, "u", now=datetime.now(UTC) - timedelta(hours=2), expires_in=timedelta(hours=1)
    )
    with pytest.raises(AuthenticationError, match="token has expired"):
        JWTAuthenticator(settings).verify(token)


def test_leeway_tolerates_clock_skew() -> None:
    settings = auth_settings()
    token = create_token(
        settings, "u", now=datetime.now(UTC) - timedelta(seconds=70), expires_in=timedelta(minutes=1)
    )
    assert JWTAuthenticator(settings, leeway=timedelta(seconds=30)).verify(token).subject == "u"


def test_wrong_secret_is_refused() -> None:
    token = create_token(auth_settings(jwt_secret=SecretStr(OTHER_SECRET)), "u")
    with pytest.raises(AuthenticationError, match="signature is invalid") as caught:
        JWTAuthenticator(auth_settings()).verify(token)
    assert SECRET not in caught.value.message
    assert token not in caught.value.message


@pytest.mark.parametrize(
    ("token_claims", "message"),
    [
        ({"aud": "someone-else", "iss": "https://auth.example.com"}, "audience is not accepted"),
        ({"aud": "payments", "iss": "https://evil.example.com"}, "issuer is not accepted"),
        ({"iss": "https://auth.example.com"}, "missing the 'aud' claim"),
        ({"aud": "payments"}, "missing the 'iss' claim"),
    ],
)
def test_wrong_audience_or_issuer_is_refused(token_claims: dict[str, str], message: str) -> None:
    settings = auth_settings(audience="payments", issuer="https://auth.example.com")
    token = jwt.encode({"sub": "u", "exp": future(), **token_claims}, SECRET, "HS256")
    with pytest.raises(AuthenticationError, match=message):
        JWTAuthenticator(settings).verify(token)


def test_unexpected_audience_is_refused_when_none_is_configured() -> None:
    token = jwt.encode({"sub": "u", "exp": future(), "aud": "another-service"}, SECRET, "HS256")
    with pytest.raises(AuthenticationError, match="audience"):
        JWTAuthenticator(auth_settings()).verify(token)


def test_alg_none_is_refused() -> None:
    unsigned = (
        f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': 'admin', 'exp': future(), 'roles': ['admin']})}."
    )
    with pytest.raises(AuthenticationError, match="algorithm is not accepted"):
        JWTAuthenticator(auth_settings()).verify(unsigned)


def test_algorithm_outside_the_allowed_list_is_refused() -> None:
    token = jwt.encode({"sub": "u", "exp": future()}, SECRET + SECRET, "HS512")
    with pytest.raises(AuthenticationError, match="algorithm is not accepted"):
        JWTAuthenticator(auth_settings()).verify(token)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": "FUTURE"}, "missing the 'sub' claim"),
        ({"sub": "u"}, "missing the 'exp' claim"),
        ({"sub": "", "exp": "FUTURE"}, "subject"),
        ({"sub": 42, "exp": "FUTURE"}, "token is invalid"),
    ],
)
def test_required_claims(claims: dict[str, Any], message: str) -> None:
    claims = {name: future() if value == "FUTURE" else value for name, value in claims.items()}
    token = jwt.encode(claims, SECRET, "HS256")
    with pytest.raises(AuthenticationError, match=message):
        JWTAuthenticator(auth_settings()).verify(token)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "....", "eyJhbGciOiJIUzI1NiJ9.e30.sig"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(AuthenticationError):
        JWTAuthenticator(auth_settings()).verify(token)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Bearer", "malformed"),
        ("Bearer ", "malformed"),
        ("Basic dXNlcjpwYXNz", "malformed"),
        ("Token abc", "malformed"),
        ("Bearer a b", "malformed"),
    ],
)
def test_missing_or_malformed_header_is_refused(header: str | None, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        JWTAuthenticator(auth_settings()).authenticate(header)


def test_rs256_with_a_public_key(rsa_keys: tuple[bytes, str]) -> None:
    private_pem, public_pem = rsa_keys
    settings = AuthSettings(jwt_public_key=public_pem, jwt_algorithms=["RS256"])
    token = jwt.encode({"sub": "u", "exp": future(), "roles": ["admin"]}, private_pem, "RS256")
    principal = JWTAuthenticator(settings).verify(token)
    assert principal == Principal(subject="u", is_admin=True)


def test_rs256_signed_by_another_key_is_refused(rsa_keys: tuple[bytes, str]) -> None:
    _, public_pem = rsa_keys
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "u", "exp": future()}, other, "RS256")
    settings = AuthSettings(jwt_public_key=public_pem, jwt_algorithms=["RS256"])
    with pytest.raises(AuthenticationError, match="signature is invalid"):
        JWTAuthenticator(settings).verify(token)


def test_public_key_is_never_an_hmac_secret(rsa_keys: tuple[bytes, str]) -> None:
    # The key-confusion attack: an HS256 token "signed" with the public key as the secret.
    _, public_pem = rsa_keys
    settings = AuthSettings(jwt_public_key=public_pem, jwt_algorithms=["RS256", "HS256"])
    header = b64({"alg": "HS256", "typ": "JWT"})
    payload = b64({"sub": "attacker", "exp": future(), "roles": ["admin"]})
    signature = hmac.new(public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
    with pytest.raises(AuthenticationError, match="algorithm is not accepted"):
        JWTAuthenticator(settings).verify(forged)


def test_es256_with_a_public_key() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = AuthSettings(jwt_public_key=public_pem, jwt_algorithms=["ES256", "RS256"])
    token = jwt.encode({"sub": "u", "exp": future()}, private, "ES256")
    assert JWTAuthenticator(settings).verify(token).subject == "u"


def test_configuration_is_checked_up_front(rsa_keys: tuple[bytes, str]) -> None:
    with pytest.raises(ConfigurationError, match="needs a key"):
        JWTAuthenticator(AuthSettings())
    with pytest.raises(ConfigurationError, match="needs a key"):
        JWTAuthenticator(AuthSettings(jwt_secret=SecretStr(SECRET), jwt_algorithms=["RS256"]))
    with pytest.raises(ConfigurationError, match="at least 32"):
        JWTAuthenticator(AuthSettings(jwt_secret=SecretStr("short")))
    with pytest.raises(ConfigurationError, match="PEM public key"):
        JWTAuthenticator(AuthSettings(jwt_public_key="not a key", jwt_algorithms=["RS256"]))
    _, public_pem = rsa_keys
    assert JWTAuthenticator(AuthSettings(jwt_public_key=public_pem, jwt_algorithms=["RS256"]))


def test_create_token_needs_an_hmac_secret(rsa_keys: tuple[bytes, str]) -> None:
    _, public_pem = rsa_keys
    with pytest.raises(ConfigurationError, match="jwt_secret"):
        create_token(AuthSettings(jwt_public_key=public_pem, jwt_algorithms=["RS256"]), "u")
    with pytest.raises(ConfigurationError, match="HS256"):
        create_token(AuthSettings(jwt_secret=SecretStr(SECRET), jwt_algorithms=["RS256"]), "u")
    with pytest.raises(ConfigurationError, match="at least"):
        create_token(AuthSettings(jwt_secret=SecretStr("short")), "u")


def test_create_token_claims() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    token = create_token(
        auth_settings(), "u", email="a@example.com", roles=["admin"], expires_in=timedelta(minutes=5), now=now
    )
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "sub": "u",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "email": "a@example.com",
        "roles": ["admin"],
    }


def test_require_admin() -> None:
    admin = Principal(subject="a", is_admin=True)
    assert require_admin(admin) is admin
    with pytest.raises(PermissionDeniedError, match="admin role required"):
        require_admin(Principal(subject="b"))


def test_demo_without_a_key_lets_everyone_in_as_the_demo_admin() -> None:
    demo = DemoAuthenticator(AuthSettings(mode="none"))
    assert demo.authenticate(None) == Principal(subject="demo", email="demo@example.com", is_admin=True)
    assert demo.authenticate("Bearer anything") == DEMO_PRINCIPAL


@pytest.mark.anyio
async def test_demo_with_a_secret_still_verifies_tokens() -> None:
    settings = auth_settings(mode="none")
    demo = DemoAuthenticator(settings)
    assert (await demo(Request({"type": "http", "headers": []}))) == DEMO_PRINCIPAL
    token = create_token(settings, "customer-7")
    assert demo.authenticate(f"Bearer {token}") == Principal(subject="customer-7")
    with pytest.raises(AuthenticationError, match="signature is invalid"):
        demo.authenticate(f"Bearer {create_token(auth_settings(jwt_secret=SecretStr(OTHER_SECRET)), 'x')}")
    with pytest.raises(AuthenticationError):
        demo.authenticate("Bearer garbage")
