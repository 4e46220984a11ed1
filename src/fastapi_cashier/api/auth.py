"""Who is calling: the :class:`Principal`, the built-in JWT bearer authenticator and dev tokens.

A host with its own authentication passes ``PaymentsRouter(settings, authenticate=...)`` a
dependency that returns a :class:`Principal`; otherwise :class:`JWTAuthenticator` verifies an
``Authorization: Bearer <jwt>`` header with the keys of :class:`~fastapi_cashier.settings.AuthSettings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import AllowedPublicKeys
from starlette.requests import Request

from ..clock import utcnow
from ..errors import AuthenticationError, ConfigurationError, PermissionDeniedError
from ..settings import AuthSettings
from .problems import CashierHTTPException

__all__ = [
    "DEMO_PRINCIPAL",
    "DemoAuthenticator",
    "JWTAuthenticator",
    "Principal",
    "create_token",
    "require_admin",
    "storable_principal",
]

#: The longest subject and email the customers table holds (``external_id``, ``email``).
MAX_SUBJECT_LENGTH = 255
MAX_EMAIL_LENGTH = 320

# RFC 7518 section 3.2: an HMAC key at least as long as the hash output.
_MIN_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    Attributes:
        subject: The host's stable user id (the JWT ``sub``); becomes the customer's ``external_id``.
        email: The caller's email, if known.
        is_admin: Whether the caller may use the admin endpoints.
    """

    subject: str
    email: str | None = None
    is_admin: bool = False


#: Who every caller is under ``auth.mode = "none"`` when no bearer token is sent.
DEMO_PRINCIPAL = Principal(subject="demo", email="demo@example.com", is_admin=True)


def storable_principal(principal: Principal) -> Principal:
    """The principal as the database can store it, the same on every database.

    A subject the customers table cannot hold (a NUL character, which PostgreSQL refuses, or
    more than 255 characters) would become nobody's customer: such a caller is refused. An
    unusable email, an optional claim, is dropped.

    Raises:
        AuthenticationError: The subject cannot be stored.
    """
    subject = principal.subject
    if not isinstance(subject, str) or not subject.strip():
        raise AuthenticationError("token subject ('sub') must be a non-empty string")
    if "\x00" in subject or len(subject) > MAX_SUBJECT_LENGTH:
        raise AuthenticationError(
            f"token subject ('sub') must be at most {MAX_SUBJECT_LENGTH} characters without NUL"
        )
    email = principal.email
    if email is not None and ("\x00" in email or len(email) > MAX_EMAIL_LENGTH or not email.strip()):
        return replace(principal, email=None)
    return principal


def require_admin(principal: Principal) -> Principal:
    """Return ``principal`` if it is an admin, else raise :class:`PermissionDeniedError`."""
    if not principal.is_admin:
        raise PermissionDeniedError("admin role required")
    return principal


def _is_hmac(algorithm: str) -> bool:
    return algorithm.startswith("HS")


def _check_secret(settings: AuthSettings, secret: bytes) -> None:
    for algorithm in settings.jwt_algorithms:
        minimum = _MIN_SECRET_BYTES.get(algorithm)
        if minimum is not None and len(secret) < minimum:
            raise ConfigurationError(
                f"auth.jwt_secret is {len(secret)} bytes; {algorithm} needs at least {minimum} "
                f"(RFC 7518 section 3.2). Generate one with: "
                f'python -c "import secrets; print(secrets.token_urlsafe({minimum}))"'
            )


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationError("missing bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationError("malformed Authorization header: expected 'Bearer <token>'")
    return token


class JWTAuthenticator:
    """Verifies ``Authorization: Bearer <jwt>`` and returns the :class:`Principal`.

    Usable as a FastAPI dependency (``Depends(JWTAuthenticator(settings.auth))``). HMAC tokens
    (HS256/384/512) are checked with ``jwt_secret``, RSA, EC and EdDSA tokens with
    ``jwt_public_key``; only the algorithms in ``jwt_algorithms`` are accepted, never ``none``.
    ``sub`` and ``exp`` are required, ``aud`` and ``iss`` are checked when configured. The
    caller is an admin when the ``roles`` claim (a list, or a space-separated string) contains
    ``admin_role``.

    Args:
        settings: The ``auth`` section of the settings.
        leeway: Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.

    Raises:
        ConfigurationError: No key can verify any of the accepted algorithms, the secret is too
            short for an accepted HMAC algorithm, or the public key is not a PEM public key.
    """

    def __init__(self, settings: AuthSettings, *, leeway: timedelta = timedelta(0)) -> None:
        self.settings = settings
        self.leeway = leeway
        self._secret: bytes | None = None
        self._public_key: AllowedPublicKeys | None = None
        if settings.jwt_secret is not None:
            self._secret = settings.jwt_secret.get_secret_value().encode()
            _check_secret(settings, self._secret)
        if settings.jwt_public_key is not None:
            try:
                loaded = load_pem_public_key(settings.jwt_public_key.encode())
            except (ValueError, TypeError) as exc:
                raise ConfigurationError("auth.jwt_public_key is not a PEM public key") from exc
            self._public_key = cast(AllowedPublicKeys, loaded)
        usable = [algorithm for algorithm in settings.jwt_algorithms if self._key_for(algorithm) is not None]
        keys = {id(self._key_for(algorithm)) for algorithm in usable}
        #: The accepted algorithms and their key when every one of them uses the same key.
        self._single_family: tuple[list[str], bytes | AllowedPublicKeys] | None = None
        if usable and len(keys) == 1:
            key = self._key_for(usable[0])
            assert key is not None
            self._single_family = (usable, key)
        if not usable:
            raise ConfigurationError(
                "JWT authentication needs a key for one of auth.jwt_algorithms "
                f"({', '.join(settings.jwt_algorithms)}): set auth.jwt_secret for HS* or "
                "auth.jwt_public_key for RS*/ES*/EdDSA, or pass authenticate= to PaymentsRouter"
            )

    def _key_for(self, algorithm: str) -> bytes | AllowedPublicKeys | None:
        # The key follows the algorithm family, so a public key can never be used as an HMAC secret.
        return self._secret if _is_hmac(algorithm) else self._public_key

    async def __call__(self, request: Request) -> Principal:
        """The principal of the request's bearer token (a dependency; usable on host routes too).

        Raises:
            CashierHTTPException: wrapping the :class:`AuthenticationError`, so a host route
                answers 401 and the library's routes a problem document.
        """
        try:
            return self.authenticate(request.headers.get("authorization"))
        except AuthenticationError as exc:
            raise CashierHTTPException(exc) from exc

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization`` header value."""
        return self.verify(_bearer_token(authorization))

    def verify(self, token: str) -> Principal:
        """The principal of a bare JWT, or :class:`AuthenticationError` saying what is wrong."""
        claims = self._decode(token)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise AuthenticationError("token subject ('sub') must be a non-empty string")
        email = claims.get("email")
        return Principal(
            subject=subject,
            email=email if isinstance(email, str) and email else None,
            is_admin=self.settings.admin_role in _roles(claims.get("roles")),
        )

    def _algorithms_and_key(self, token: str) -> tuple[list[str], bytes | AllowedPublicKeys]:
        """The algorithms to accept for ``token`` and the key that verifies them.

        With one key family configured (the usual case) the token is parsed once, by
        ``jwt.decode``; only with both a secret and a public key is its header read first, to
        pick the key, so a public key is never tried as an HMAC secret.
        """
        if self._single_family is not None:
            return self._single_family
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise AuthenticationError("token is malformed") from None
        if not isinstance(algorithm, str) or algorithm not in self.settings.jwt_algorithms:
            raise AuthenticationError("token algorithm is not accepted")
        key = self._key_for(algorithm)
        if key is None:
            raise AuthenticationError("token algorithm is not accepted")
        return [algorithm], key

    def _decode(self, token: str) -> dict[str, Any]:
        algorithms, key = self._algorithms_and_key(token)
        required = ["sub", "exp"]
        if self.settings.audience is not None:
            required.append("aud")
        if self.settings.issuer is not None:
            required.append("iss")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.leeway,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("token is not valid yet") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("token signature is invalid") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("token audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("token issuer is not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"token is missing the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise AuthenticationError("token algorithm is not accepted") from None
        except jwt.DecodeError:
            raise AuthenticationError("token is malformed") from None
        except jwt.PyJWTError:
            raise AuthenticationError("token is invalid") from None
        return claims


def _roles(claim: object) -> frozenset[str]:
    if isinstance(claim, str):
        return frozenset(claim.split())
    if isinstance(claim, list | tuple):
        return frozenset(role for role in claim if isinstance(role, str))
    return frozenset()


class DemoAuthenticator:
    """Authentication for ``auth.mode = "none"`` demos; never for production.

    Without a bearer token every caller is :data:`DEMO_PRINCIPAL`
    (``Principal("demo", "demo@example.com", is_admin=True)``).
    A bearer token, when one is sent and a key is configured, is still verified, so the demo can
    show several customers. The settings refuse ``mode="none"`` in production.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._jwt = JWTAuthenticator(settings) if settings.configured else None

    async def __call__(self, request: Request) -> Principal:
        """The demo principal, or the verified principal of a bearer token."""
        try:
            return self.authenticate(request.headers.get("authorization"))
        except AuthenticationError as exc:
            raise CashierHTTPException(exc) from exc

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an ``Authorization`` header value (which may be absent)."""
        if authorization and self._jwt is not None:
            return self._jwt.authenticate(authorization)
        return DEMO_PRINCIPAL


def create_token(
    settings: AuthSettings,
    subject: str,
    *,
    email: str | None = None,
    roles: Sequence[str] = (),
    expires_in: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    """Sign a development JWT that :class:`JWTAuthenticator` accepts (``fastapi-cashier token``).

    Uses the first HMAC algorithm of ``jwt_algorithms`` and ``jwt_secret``; adds ``aud`` and
    ``iss`` when they are configured.

    Args:
        settings: The ``auth`` section of the settings.
        subject: The ``sub`` claim, the host's user id.
        email: An ``email`` claim.
        roles: The ``roles`` claim; include ``settings.admin_role`` for an admin token.
        expires_in: Lifetime of the token.
        now: The issue time (defaults to the current time); for tests.

    Raises:
        ConfigurationError: No ``jwt_secret``, no HS* algorithm accepted, or a secret too short.
    """
    if settings.jwt_secret is None:
        raise ConfigurationError("create_token needs auth.jwt_secret (tokens are signed with HS256/384/512)")
    algorithm = next((alg for alg in settings.jwt_algorithms if _is_hmac(alg)), None)
    if algorithm is None:
        raise ConfigurationError("create_token signs with HMAC; add HS256 to auth.jwt_algorithms")
    secret = settings.jwt_secret.get_secret_value().encode()
    _check_secret(settings, secret)
    issued = now or utcnow()
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": int(issued.timestamp()),
        "exp": int((issued + expires_in).timestamp()),
    }
    if email is not None:
        claims["email"] = email
    if roles:
        claims["roles"] = list(roles)
    if settings.audience is not None:
        claims["aud"] = settings.audience
    if settings.issuer is not None:
        claims["iss"] = settings.issuer
    return jwt.encode(claims, secret, algorithm=algorithm)
