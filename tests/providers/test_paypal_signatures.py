"""PayPal webhook verification: offline against the certificate, the postback as fallback, fail closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from fastapi_cashier.errors import SignatureVerificationError
from fastapi_cashier.providers.paypal import PayPalClient
from fastapi_cashier.providers.paypal._signature import (
    PAYPAL_CERT_HOSTS,
    CertificateStore,
    WebhookVerifier,
    check_signature,
    read_transmission,
    signed_message,
)

from .paypal_sandbox import Fault, PayPalSandbox

pytestmark = pytest.mark.anyio

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "provider-payloads" / "paypal"
HEADERS = (
    "PAYPAL-TRANSMISSION-ID",
    "PAYPAL-TRANSMISSION-TIME",
    "PAYPAL-TRANSMISSION-SIG",
    "PAYPAL-CERT-URL",
    "PAYPAL-AUTH-ALGO",
)


def make_verifier(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, *, postback: bool = True
) -> WebhookVerifier:
    return WebhookVerifier(
        webhook_id=paypal_sandbox.webhook_id,
        certificates=CertificateStore(
            paypal_client.http, allowed_hosts={paypal_sandbox.cert_host}, trusted_roots=[paypal_sandbox.ca]
        ),
        postback=paypal_client.verify_webhook_signature if postback else None,
        tolerance_seconds=300,
        now=lambda: paypal_sandbox.state.now,
    )


async def delivery(paypal_sandbox: PayPalSandbox) -> tuple[dict[str, str], bytes]:
    return await paypal_sandbox.emit(
        "PAYMENT.CAPTURE.COMPLETED", "capture", {"id": "2GG279541U471931P"}, "Payment completed"
    )


async def test_a_delivery_verifies(paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient) -> None:
    headers, body = await delivery(paypal_sandbox)
    transmission = await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)
    assert transmission.id == headers["PAYPAL-TRANSMISSION-ID"]
    # Header names arrive in any case (PayPal sends Paypal-Transmission-Id).
    lower = {name.title(): value for name, value in headers.items()}
    await make_verifier(paypal_sandbox, paypal_client).verify(lower, body)


async def test_the_certificate_is_cached(paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient) -> None:
    verifier = make_verifier(paypal_sandbox, paypal_client, postback=False)
    headers, body = await delivery(paypal_sandbox)
    await verifier.verify(headers, body)
    paypal_sandbox.certificates.clear()  # a second fetch would now fail and, without postback, refuse
    headers, body = await delivery(paypal_sandbox)
    await verifier.verify(headers, body)


@pytest.mark.parametrize("missing", HEADERS)
async def test_a_missing_header_is_refused(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, missing: str
) -> None:
    headers, body = await delivery(paypal_sandbox)
    del headers[missing]
    with pytest.raises(SignatureVerificationError, match=missing):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)


async def test_another_webhook_id_is_refused(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    body = json.dumps({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED"}).encode()
    headers = paypal_sandbox.sign(body, webhook_id="ANOTHER-LISTENER")
    with pytest.raises(SignatureVerificationError, match="does not match"):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)


async def test_no_webhook_id_refuses_everything(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    headers, body = await delivery(paypal_sandbox)
    verifier = make_verifier(paypal_sandbox, paypal_client)
    verifier.webhook_id = None
    with pytest.raises(SignatureVerificationError, match="WEBHOOK_ID"):
        await verifier.verify(headers, body)


@pytest.mark.parametrize("change", ["append", "flip", "reserialise"])
async def test_a_tampered_body_is_refused(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, change: str
) -> None:
    headers, body = await delivery(paypal_sandbox)
    if change == "append":
        tampered = body + b"\n"
    elif change == "flip":
        tampered = body.replace(b"COMPLETED", b"COMPLETEE", 1)
    else:
        tampered = json.dumps(json.loads(body), indent=2).encode()
    with pytest.raises(SignatureVerificationError):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, tampered)


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/v1/notifications/certs/CERT-1",
        "http://{host}/v1/notifications/certs/CERT-1",
        "https://user@{host}/v1/notifications/certs/CERT-1",
        "https://{host}.attacker.example/v1/notifications/certs/CERT-1",
        "not a url",
    ],
)
async def test_a_cert_url_off_the_allowed_hosts_is_refused_without_fetching(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, url: str
) -> None:
    headers, body = await delivery(paypal_sandbox)
    headers["PAYPAL-CERT-URL"] = url.format(host=paypal_sandbox.cert_host)
    with pytest.raises(SignatureVerificationError, match="PAYPAL-CERT-URL"):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)


def test_production_allows_only_paypal_hosts() -> None:
    store = CertificateStore(httpx.AsyncClient())
    assert store.allowed_hosts == PAYPAL_CERT_HOSTS
    store.check_url("https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77")
    with pytest.raises(SignatureVerificationError):
        store.check_url("https://paypal-paypal_sandbox.test/v1/notifications/certs/CERT-1")


@pytest.mark.parametrize("kind", ["expired", "unknown"])
async def test_an_expired_or_unknown_certificate_is_refused(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, kind: str
) -> None:
    paypal_sandbox.signer = paypal_sandbox.make_signer(kind)
    headers, body = await delivery(paypal_sandbox)
    with pytest.raises(SignatureVerificationError, match="expired" if kind == "expired" else "trusted root"):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)


async def test_a_certificate_for_another_name_is_refused(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    from .paypal_sandbox.signing import Signer, make_leaf, pem

    now = paypal_sandbox.state.now
    key, cert = make_leaf(
        paypal_sandbox.ca_key,
        paypal_sandbox.ca,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=9),
        common_name="shop.example",
    )
    paypal_sandbox.certificates["CERT-other"] = pem(cert, paypal_sandbox.ca)
    paypal_sandbox.signer = Signer(key, "CERT-other")
    headers, body = await delivery(paypal_sandbox)
    with pytest.raises(SignatureVerificationError, match="webhook-signing"):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)


@pytest.mark.parametrize("offset", [301, -301, 86400 * 3])
async def test_a_transmission_outside_the_tolerance_is_refused(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, offset: int
) -> None:
    headers, body = await delivery(paypal_sandbox)
    paypal_sandbox.state.advance(offset)
    with pytest.raises(SignatureVerificationError, match="tolerance"):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("PAYPAL-AUTH-ALGO", "SHA1withRSA"),
        ("PAYPAL-TRANSMISSION-SIG", "***"),
        ("PAYPAL-TRANSMISSION-TIME", "yesterday"),
    ],
)
async def test_malformed_headers_are_refused(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, header: str, value: str
) -> None:
    headers, body = await delivery(paypal_sandbox)
    headers[header] = value
    with pytest.raises(SignatureVerificationError, match=header):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)


async def test_an_unreachable_certificate_falls_back_to_the_postback(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    headers, body = await delivery(paypal_sandbox)
    paypal_sandbox.state.faults.append(Fault("GET", paypal_sandbox.signer.cert_id, "connect"))
    await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)
    postbacks = [call for call in paypal_sandbox.state.calls if call[1].endswith("verify-webhook-signature")]
    assert len(postbacks) == 1

    # The postback refuses what is not PayPal's: a tampered body fails closed.
    paypal_sandbox.certificates.pop(paypal_sandbox.signer.cert_id)  # now answered 404
    with pytest.raises(SignatureVerificationError, match="did not confirm"):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body.replace(b"2GG", b"3GG"))
    # Without a postback, a certificate that cannot be had refuses the delivery.
    with pytest.raises(SignatureVerificationError, match="could not be fetched"):
        await make_verifier(paypal_sandbox, paypal_client, postback=False).verify(headers, body)


async def test_a_failing_postback_fails_closed(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    headers, body = await delivery(paypal_sandbox)
    paypal_sandbox.certificates.pop(paypal_sandbox.signer.cert_id)
    paypal_sandbox.state.faults.append(Fault("POST", "verify-webhook-signature", "500"))
    with pytest.raises(SignatureVerificationError, match="could not be checked"):
        await make_verifier(paypal_sandbox, paypal_client).verify(headers, body)


# ---------------------------------------------------------------------------- real deliveries


def shared(name: str) -> bytes:
    path = PAYLOADS / name
    if not path.is_file():
        pytest.skip("../shared/provider-payloads/paypal is not here")
    return path.read_bytes()


def test_a_real_paypal_delivery_verifies_offline() -> None:
    """The Java SDK's BILLING.PLAN.CREATED, signed by PayPal's sandbox certificate (see NOTES.md)."""
    body = shared("java_sdk__BILLING.PLAN.CREATED.body.json")
    delivery = json.loads(shared("java_sdk__BILLING.PLAN.CREATED.delivery.json"))
    certificate = x509.load_pem_x509_certificate(shared("java_sdk__testClientCert.crt"))
    headers = {**delivery["headers"], "PAYPAL-AUTH-ALGO": "SHA256withRSA"}
    transmission = read_transmission(headers)
    message = signed_message(transmission.id, transmission.time, delivery["webhook_id"], body)
    assert (
        message == b"071f7d20-1584-11e7-abf0-6b62a8a99ac4|2017-03-30T20:04:05Z|96605875FF6516633|3494065244"
    )
    check_signature(certificate, message, transmission.signature)
    wrong = signed_message(transmission.id, transmission.time, "NotToBeFound", body)
    with pytest.raises(SignatureVerificationError):
        check_signature(certificate, wrong, transmission.signature)
    with pytest.raises(SignatureVerificationError):
        check_signature(certificate, message, transmission.signature[:-1] + b"\x00")


async def test_a_real_certificate_without_its_chain_is_not_trusted() -> None:
    """PayPal's own certificate, served without the intermediate, does not chain to a root: refused."""
    body = shared("java_sdk__BILLING.PLAN.CREATED.body.json")
    delivery = json.loads(shared("java_sdk__BILLING.PLAN.CREATED.delivery.json"))
    pem = shared("java_sdk__testClientCert.crt")
    served: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        served.append(str(request.url))
        return httpx.Response(200, content=pem)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        verifier = WebhookVerifier(
            webhook_id=delivery["webhook_id"],
            certificates=CertificateStore(http),
            postback=None,
            tolerance_seconds=300,
            now=lambda: datetime(2017, 3, 30, 20, 4, 30, tzinfo=UTC),
        )
        headers = {**delivery["headers"], "PAYPAL-AUTH-ALGO": "SHA256withRSA"}
        with pytest.raises(SignatureVerificationError, match="trusted root"):
            await verifier.verify(headers, body)
        assert served == [delivery["headers"]["PAYPAL-CERT-URL"]]
        # As the SDK's test sends it (PAYPAL-AUTH-ALGO: NotToBeFound), it is refused before any fetch.
        with pytest.raises(SignatureVerificationError, match="PAYPAL-AUTH-ALGO"):
            await verifier.verify(delivery["headers"], body)
        assert len(served) == 1


@pytest.mark.parametrize(
    "name",
    [
        "node_sdk_sample__PAYMENT.SALE.COMPLETED",
        "node_sdk_test__PAYMENT.SALE.COMPLETED",
        "php_sdk__PAYMENTS.PAYMENT.CREATED",
    ],
)
def test_real_deliveries_signed_by_certificates_not_here_are_refused(
    paypal_sandbox: PayPalSandbox, name: str
) -> None:
    """Their certificates are not in ../shared: their headers parse (any case), and against another
    trusted certificate their signatures are refused."""
    body = shared(f"{name}.body.json")
    delivery = json.loads(shared(f"{name}.delivery.json"))
    transmission = read_transmission(delivery["headers"])
    assert transmission.cert_url.startswith("https://api.sandbox.paypal.com/v1/notifications/certs/")
    assert len(transmission.signature) == 256  # RSA-2048
    certificate = x509.load_pem_x509_certificates(paypal_sandbox.certificates[paypal_sandbox.signer.cert_id])[
        0
    ]
    message = signed_message(transmission.id, transmission.time, delivery["webhook_id"], body)
    with pytest.raises(SignatureVerificationError):
        check_signature(certificate, message, transmission.signature)
