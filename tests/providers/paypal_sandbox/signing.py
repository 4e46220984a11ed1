"""The sandbox's webhook certificates and signatures: PayPal's scheme with a CA made for the test.

A delivery is signed as PayPal does: RSA PKCS#1 v1.5 over SHA-256 of
``<transmission id>|<transmission time>|<webhook id>|<crc32 of the raw body, decimal>``, with the
certificate served at the ``PAYPAL-CERT-URL`` the delivery names.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LEAF_NAME = "messageverificationcerts.sandbox.paypal.com"


@cache
def _key(role: str) -> rsa.RSAPrivateKey:
    """One RSA key per role for the whole run: generating them is the slow part of a sandbox."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PayPal sandbox of the tests"),
        ]
    )


def make_ca(not_before: datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key("ca")
    name = _name("Sandbox Test Root CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(
    issuer_key: rsa.RSAPrivateKey | None,
    issuer: x509.Certificate | None,
    *,
    not_before: datetime,
    not_after: datetime,
    common_name: str = LEAF_NAME,
    role: str = "leaf",
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A signing certificate issued by ``issuer`` (self-signed when ``issuer`` is None)."""
    key = _key(role)
    signer_key = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.subject if issuer is not None else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    return key, builder.sign(signer_key, hashes.SHA256())


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def signed_string(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


@dataclass
class Signer:
    """A key and the id of the certificate (served by the sandbox) that vouches for it."""

    key: rsa.RSAPrivateKey
    cert_id: str

    def headers(self, *, base_url: str, webhook_id: str, body: bytes, time: str) -> dict[str, str]:
        transmission_id = str(uuid.uuid4())
        signature = self.key.sign(
            signed_string(transmission_id, time, webhook_id, body), padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": f"{base_url}/v1/notifications/certs/{self.cert_id}",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode("ascii"),
            "PAYPAL-TRANSMISSION-TIME": time,
            "Paypal-Auth-Version": "v2",
            "Content-Type": "application/json",
        }
