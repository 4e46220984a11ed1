"""Verification of PayPal's webhook deliveries: offline first, PayPal's postback API as fallback.

PayPal signs each transmission with RSA-SHA256 (``PAYPAL-AUTH-ALGO: SHA256withRSA``) over the
string ``<PAYPAL-TRANSMISSION-ID>|<PAYPAL-TRANSMISSION-TIME>|<webhook id>|<CRC-32 of the raw body,
unsigned decimal>``, and names in ``PAYPAL-CERT-URL`` the certificate whose key signed it.

Offline verification trusts that URL only as far as this module allows:

* it must be ``https`` on one of PayPal's own API hosts (:data:`PAYPAL_CERT_HOSTS`; tests add
  their server's host), since the URL comes from the request and anyone can serve a certificate;
* the certificate must be valid now, be issued for PayPal's message-verification name
  (:data:`SIGNING_CERT_NAMES`) and chain to a trusted root (the ``certifi`` roots unless others
  are given); certificates are cached by URL;
* the transmission time must be within the tolerance of now, so a captured delivery cannot be
  replayed later (PayPal signs each retry afresh);
* and the webhook id is this listener's own.

When the certificate cannot be had at all (PayPal unreachable, or answering other than 200), the
delivery is checked by ``POST /v1/notifications/verify-webhook-signature`` instead; so is one whose
cert URL is on the host of a configured ``api_base`` (a local PayPal stand-in, which is trusted as
PayPal is, since it receives the app's credentials). Every other failure refuses the delivery:
verification fails closed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import warnings
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from ...errors import ProviderError, SignatureVerificationError
from .. import signing

__all__ = [
    "PAYPAL_CERT_HOSTS",
    "SIGNING_CERT_NAMES",
    "CertificateStore",
    "CertificateUnavailableError",
    "Transmission",
    "WebhookVerifier",
    "check_signature",
    "read_transmission",
    "signed_message",
]

logger = logging.getLogger("fastapi_cashier")

PAYPAL_CERT_HOSTS: Final = frozenset(
    {"api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com"}
)
"""The hosts a ``PAYPAL-CERT-URL`` may name."""

SIGNING_CERT_NAMES: Final = frozenset(
    {"messageverificationcerts.paypal.com", "messageverificationcerts.sandbox.paypal.com"}
)
"""The DNS names PayPal's webhook-signing certificates are issued for."""

ALGORITHM: Final = "SHA256withRSA"
_MAX_CACHED: Final = 16
_MAX_CERT_BYTES: Final = 65536

Postback = Callable[[dict[str, Any]], Awaitable[bool]]


class CertificateUnavailableError(Exception):
    """The certificate could not be fetched: PayPal unreachable, or it answered other than 200."""


@dataclass(frozen=True)
class Transmission:
    """The ``PAYPAL-*`` headers of one delivery."""

    id: str
    time: str
    signature: bytes
    cert_url: str
    auth_algo: str

    @property
    def sent_at(self) -> datetime:
        return _parse_time(self.time)


def _parse_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureVerificationError("PAYPAL-TRANSMISSION-TIME is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise SignatureVerificationError("PAYPAL-TRANSMISSION-TIME has no time zone")
    return moment.astimezone(UTC)


def read_transmission(headers: Mapping[str, str]) -> Transmission:
    """The five ``PAYPAL-*`` headers (any case), checked for presence and form.

    Raises:
        SignatureVerificationError: A header is missing, repeated or malformed, or the algorithm
            is not ``SHA256withRSA``.
    """
    transmission_id = signing.header_value(headers, "PAYPAL-TRANSMISSION-ID")
    time = signing.header_value(headers, "PAYPAL-TRANSMISSION-TIME")
    encoded = signing.header_value(headers, "PAYPAL-TRANSMISSION-SIG")
    cert_url = signing.header_value(headers, "PAYPAL-CERT-URL")
    auth_algo = signing.header_value(headers, "PAYPAL-AUTH-ALGO")
    if auth_algo != ALGORITHM:
        raise SignatureVerificationError(f"PAYPAL-AUTH-ALGO must be {ALGORITHM}")
    if "|" in transmission_id or "|" in time:
        raise SignatureVerificationError("PAYPAL-TRANSMISSION-ID and -TIME may not contain '|'")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureVerificationError("PAYPAL-TRANSMISSION-SIG is not base64") from None
    _parse_time(time)
    return Transmission(transmission_id, time, signature, cert_url, auth_algo)


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    """What PayPal signs: ``id|time|webhook id|crc32(raw body)`` with the CRC as unsigned decimal."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def check_signature(certificate: x509.Certificate, message: bytes, signature: bytes) -> None:
    """Check an RSA PKCS#1 v1.5 SHA-256 ``signature`` of ``message`` by ``certificate``'s key.

    Raises:
        SignatureVerificationError: The key is not RSA, or the signature does not match.
    """
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureVerificationError("the PayPal certificate does not hold an RSA key")
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureVerificationError(
            "the PayPal signature does not match this body and webhook id"
        ) from None


def _certifi_roots() -> list[x509.Certificate]:
    import certifi

    with open(certifi.where(), "rb") as bundle:
        pem = bundle.read()
    with warnings.catch_warnings():
        # A few roots in the bundle have serial numbers RFC 5280 disallows; they load with a warning.
        warnings.simplefilter("ignore")
        return x509.load_pem_x509_certificates(pem)


class CertificateStore:
    """Fetches PayPal's signing certificates from allowed hosts, checks their chain, caches them.

    Args:
        http: The connection pool to fetch with (the client's: no credentials are sent), or what
            returns it when called.
        allowed_hosts: The hosts a cert URL may name (PayPal's unless a test adds its own).
        trusted_roots: The roots a certificate must chain to; default: the ``certifi`` bundle.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | Callable[[], httpx.AsyncClient],
        *,
        allowed_hosts: Iterable[str] = PAYPAL_CERT_HOSTS,
        trusted_roots: Iterable[x509.Certificate] | None = None,
    ) -> None:
        self._http = http
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self._roots = list(trusted_roots) if trusted_roots is not None else None
        self._store: Store | None = None
        self._cache: dict[str, tuple[x509.Certificate, list[x509.Certificate]]] = {}

    def check_url(self, url: str) -> None:
        """Refuse a cert URL that is not ``https`` on an allowed host."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise SignatureVerificationError("PAYPAL-CERT-URL is not a URL") from None
        if parsed.scheme != "https" or parsed.host.lower() not in self.allowed_hosts or parsed.userinfo:
            raise SignatureVerificationError(
                "PAYPAL-CERT-URL must be an https address on one of PayPal's own hosts"
            )

    async def certificate(self, url: str, *, now: datetime) -> x509.Certificate:
        """The trusted signing certificate at ``url``, valid at ``now``.

        Raises:
            SignatureVerificationError: A URL not allowed, or a certificate that is malformed,
                expired, not issued for PayPal's signing name or not chained to a trusted root.
            CertificateUnavailableError: It could not be fetched.
        """
        self.check_url(url)
        cached = self._cache.get(url)
        if cached is None:
            cached = await self._fetch(url)
        leaf, intermediates = cached
        self._trust(leaf, intermediates, now)
        if url not in self._cache:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = cached
        return leaf

    async def _fetch(self, url: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
        try:
            http = self._http if isinstance(self._http, httpx.AsyncClient) else self._http()
            response = await http.get(url, headers={"Accept": "*/*"})
        except httpx.TransportError as exc:
            raise CertificateUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise CertificateUnavailableError(f"HTTP {response.status_code}")
        if len(response.content) > _MAX_CERT_BYTES:
            raise SignatureVerificationError("the certificate at PAYPAL-CERT-URL is too large")
        try:
            chain = x509.load_pem_x509_certificates(response.content)
        except ValueError:
            raise SignatureVerificationError("PAYPAL-CERT-URL does not hold a PEM certificate") from None
        return chain[0], chain[1:]

    def _trust(self, leaf: x509.Certificate, intermediates: list[x509.Certificate], now: datetime) -> None:
        try:
            names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns_names = set(names.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            dns_names = set()
        matching = sorted(dns_names & SIGNING_CERT_NAMES)
        if not matching:
            raise SignatureVerificationError(
                "the certificate is not one of PayPal's webhook-signing certificates"
            )
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise SignatureVerificationError("the PayPal signing certificate has expired or is not valid yet")
        if self._store is None:
            self._store = Store(self._roots if self._roots is not None else _certifi_roots())
        verifier = (
            PolicyBuilder().store(self._store).time(now).build_server_verifier(x509.DNSName(matching[0]))
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise SignatureVerificationError(
                f"the PayPal signing certificate does not chain to a trusted root ({exc})"
            ) from None


class WebhookVerifier:
    """Verifies deliveries to one webhook listener.

    Args:
        webhook_id: The listener's id (``PAYMENTS_PAYPAL__WEBHOOK_ID``); None refuses everything.
        certificates: Where signing certificates come from.
        postback: Asks PayPal's verify-webhook-signature API; used when a certificate cannot be
            fetched. None: such deliveries are refused.
        tolerance_seconds: How far the transmission time may be from now.
        now: The current time.
        postback_hosts: Cert URL hosts whose deliveries are checked by the postback only (the
            host of a configured ``api_base``); none by default.
    """

    def __init__(
        self,
        *,
        webhook_id: str | None,
        certificates: CertificateStore,
        postback: Postback | None,
        tolerance_seconds: int,
        now: Callable[[], datetime],
        postback_hosts: Iterable[str] = (),
    ) -> None:
        self.webhook_id = webhook_id
        self.certificates = certificates
        self.postback_hosts = frozenset(host.lower() for host in postback_hosts)
        self._postback = postback
        self.tolerance_seconds = tolerance_seconds
        self._now = now

    async def verify(self, headers: Mapping[str, str], body: bytes) -> Transmission:
        """Check a delivery of ``body``; the transmission when it is PayPal's.

        Raises:
            SignatureVerificationError: Anything but a verified delivery to this listener.
        """
        if not self.webhook_id:
            raise SignatureVerificationError(
                "no PayPal webhook id is configured (PAYMENTS_PAYPAL__WEBHOOK_ID); every delivery is refused"
            )
        if not isinstance(body, bytes | bytearray):
            raise SignatureVerificationError("the webhook body must be the raw bytes received")
        transmission = read_transmission(headers)
        now = self._now()
        if abs((now - transmission.sent_at).total_seconds()) > self.tolerance_seconds:
            raise SignatureVerificationError(
                "PAYPAL-TRANSMISSION-TIME is outside the tolerance: a stale or replayed transmission"
            )
        if self._postback_only(transmission.cert_url):
            await self._ask_paypal(transmission, body)
            return transmission
        self.certificates.check_url(transmission.cert_url)
        message = signed_message(transmission.id, transmission.time, self.webhook_id, bytes(body))
        try:
            certificate = await self.certificates.certificate(transmission.cert_url, now=now)
        except CertificateUnavailableError as exc:
            logger.warning("PayPal's signing certificate could not be fetched (%s); asking PayPal", exc)
            await self._ask_paypal(transmission, body)
            return transmission
        check_signature(certificate, message, transmission.signature)
        return transmission

    def _postback_only(self, url: str) -> bool:
        if not self.postback_hosts:
            return False
        try:
            host = httpx.URL(url).host.lower()
        except (httpx.InvalidURL, ValueError):
            return False
        return host in self.postback_hosts

    async def _ask_paypal(self, transmission: Transmission, body: bytes) -> None:
        if self._postback is None:
            raise SignatureVerificationError("the PayPal signing certificate could not be fetched")
        try:
            event = json.loads(body)
        except ValueError:
            raise SignatureVerificationError("the PayPal webhook body is not JSON") from None
        request = {
            "auth_algo": transmission.auth_algo,
            "cert_url": transmission.cert_url,
            "transmission_id": transmission.id,
            "transmission_sig": base64.b64encode(transmission.signature).decode("ascii"),
            "transmission_time": transmission.time,
            "webhook_id": self.webhook_id,
            "webhook_event": event,
        }
        try:
            verified = await self._postback(request)
        except ProviderError as exc:
            raise SignatureVerificationError(
                f"the PayPal signature could not be checked: {exc.message}"
            ) from exc
        if not verified:
            raise SignatureVerificationError("PayPal did not confirm the signature of this delivery")
