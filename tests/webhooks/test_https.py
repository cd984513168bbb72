"""HTTPS receivers: the POST goes to the checked address while the certificate is checked
against the host name of the URL (a test CA made here stands in for a public one)."""
from __future__ import annotations

import datetime as dt
import json
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import override_settings

from tests.invoices import builders
from tests.webhooks.receiver import receiver, signature_valid
from tests.webhooks.test_deliveries import attempt_all_due, subscribe
from webhooks.models import Attempt


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA (its file for WEBHOOKS_CA_BUNDLE) and a function making a server context for a DNS name it signs."""
    folder = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Webhook test CA")).issuer_name(_name("Webhook test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    bundle = folder / "ca.pem"
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def server_context(dns_name: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(dns_name)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        chain = folder / f"{dns_name}.pem"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context

    return str(bundle), server_context


def test_an_https_receiver_with_a_certificate_for_its_name_gets_the_event(tenant, pki, django_capture_on_commit_callbacks):
    bundle, server_context = pki
    with override_settings(WEBHOOKS_CA_BUNDLE=bundle), receiver(tls=server_context("localhost")) as hook:
        subscription = subscribe(hook.url("/tls"), events=["invoice.issued"])
        with django_capture_on_commit_callbacks(execute=True):
            invoice = builders.issued()
        assert attempt_all_due() == [200]
    [request] = hook.received
    assert request.headers["Host"] == f"localhost:{hook.port}"
    assert signature_valid(subscription.secret, request)
    assert json.loads(request.body)["data"]["invoice"]["number"] == invoice.number


def test_a_certificate_for_another_name_fails_the_attempt(tenant, pki, django_capture_on_commit_callbacks):
    bundle, server_context = pki
    with override_settings(WEBHOOKS_CA_BUNDLE=bundle), receiver(tls=server_context("elsewhere.example")) as hook:
        subscribe(hook.url("/tls"), events=["invoice.issued"])
        with django_capture_on_commit_callbacks(execute=True):
            builders.issued()
        assert attempt_all_due() == [None]
    assert not hook.received
    attempt = Attempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("TLS failed") and "localhost" in attempt.error
