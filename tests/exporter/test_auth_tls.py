"""Tests of the exporter's HTTP server over real loopback sockets: basic auth, TLS, and the served process."""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import select
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest
from airflow_obs.exporter import auth
from airflow_obs.exporter.auth import BasicAuthVerifier, require_basic_auth
from airflow_obs.exporter.config import ConfigError
from airflow_obs.exporter.http_server import make_http_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import REPO_ROOT

USERS = {"prometheus": bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(rounds=4)).decode()}
TIMEOUT = 5


def hello_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello from {environ['PATH_INFO']} over {environ['wsgi.url_scheme']}\n".encode()]


@contextmanager
def serving(app=hello_app, **tls) -> Iterator[int]:
    """The app served on a free loopback port in a thread; yields the port and always stops the server."""
    server = make_http_server(app, "127.0.0.1", 0, **tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT)


def get(port: int, path: str = "/metrics", credentials: str | None = None, context: ssl.SSLContext | None = None):
    if context is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=TIMEOUT, context=context)
    headers = {}
    if credentials is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("WWW-Authenticate"), response.read().decode()
    finally:
        connection.close()


def self_signed_certificate(folder: Path, *, encrypt_key: bool = False) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(b"passphrase") if encrypt_key else serialization.NoEncryption()
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return cert_file, key_file


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path)


def trusting(cert_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert_file))


@pytest.mark.parametrize(
    "credentials",
    [None, "prometheus:wrong", "mallory:scrape-secret", "prometheus", "prometheus:" + "x" * 100],
    ids=["no-credentials", "wrong-password", "unknown-user", "no-colon", "password-too-long-for-bcrypt"],
)
def test_a_request_without_valid_credentials_gets_401_with_a_basic_challenge(credentials: str | None) -> None:
    with serving(require_basic_auth(hello_app, USERS)) as port:
        status, challenge, body = get(port, credentials=credentials)

    assert status == 401
    assert challenge.startswith('Basic realm="airflow-exporter"')
    assert "hello" not in body


def test_a_request_with_valid_credentials_reaches_the_app() -> None:
    with serving(require_basic_auth(hello_app, USERS)) as port:
        assert get(port, credentials="prometheus:scrape-secret") == (200, None, "hello from /metrics over http\n")


def test_the_health_endpoint_needs_credentials_too() -> None:
    with serving(require_basic_auth(hello_app, USERS)) as port:
        assert get(port, "/healthz")[0] == 401
        assert get(port, "/healthz", credentials="prometheus:scrape-secret")[0] == 200


def test_a_malformed_authorization_header_gets_401() -> None:
    with serving(require_basic_auth(hello_app, USERS)) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            connection.request("GET", "/metrics", headers={"Authorization": "Basic !!not-base64!!"})
            assert connection.getresponse().status == 401
        finally:
            connection.close()


def test_without_users_the_app_is_returned_unwrapped() -> None:
    assert require_basic_auth(hello_app, {}) is hello_app


def test_a_user_without_a_bcrypt_hash_is_refused_when_wrapping() -> None:
    with pytest.raises(ConfigError, match="'alice'"):
        require_basic_auth(hello_app, {"alice": "hunter2"})


def test_a_verified_password_is_remembered_so_repeated_scrapes_skip_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = BasicAuthVerifier(USERS)
    calls: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(auth.bcrypt, "checkpw", counting_checkpw)

    assert verifier.check("prometheus", "scrape-secret")
    assert verifier.check("prometheus", "scrape-secret")
    assert len(calls) == 1
    assert not verifier.check("prometheus", "wrong")
    assert not verifier.check("prometheus", "wrong")
    assert len(calls) == 3, "a failed check is never cached"
    assert not verifier.check("mallory", "scrape-secret")
    assert len(calls) == 4, "an unknown user costs one bcrypt check like a known one"


def test_tls_serves_to_a_client_trusting_the_certificate(tls_files) -> None:
    cert_file, key_file = tls_files
    with serving(tls_cert_file=str(cert_file), tls_key_file=str(key_file)) as port:
        assert get(port, context=trusting(cert_file)) == (200, None, "hello from /metrics over https\n")


def test_tls_with_basic_auth_checks_credentials_inside_the_tunnel(tls_files) -> None:
    cert_file, key_file = tls_files
    app = require_basic_auth(hello_app, USERS)
    with serving(app, tls_cert_file=str(cert_file), tls_key_file=str(key_file)) as port:
        assert get(port, context=trusting(cert_file))[0] == 401
        assert get(port, credentials="prometheus:scrape-secret", context=trusting(cert_file))[0] == 200


def test_plain_http_to_the_tls_port_fails_and_the_server_keeps_serving(tls_files) -> None:
    cert_file, key_file = tls_files
    with serving(tls_cert_file=str(cert_file), tls_key_file=str(key_file)) as port:
        with pytest.raises((OSError, http.client.HTTPException)):
            get(port)
        assert get(port, context=trusting(cert_file))[0] == 200


def test_tls_below_version_1_2_is_refused(tls_files) -> None:
    cert_file, key_file = tls_files
    server = make_http_server(hello_app, "127.0.0.1", 0, tls_cert_file=str(cert_file), tls_key_file=str(key_file))
    try:
        assert server.socket.context.minimum_version == ssl.TLSVersion.TLSv1_2
    finally:
        server.server_close()


def test_a_client_that_connects_and_stays_silent_does_not_block_others(tls_files) -> None:
    cert_file, key_file = tls_files
    with (
        serving(tls_cert_file=str(cert_file), tls_key_file=str(key_file)) as port,
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT),  # never starts a handshake
    ):
        assert get(port, context=trusting(cert_file))[0] == 200


def test_a_certificate_file_without_a_certificate_is_an_error_naming_it(tmp_path: Path, tls_files) -> None:
    bad_cert = tmp_path / "bad-cert.pem"
    bad_cert.write_text("not a certificate\n")

    with pytest.raises(ConfigError, match=f"certificate file {bad_cert} holds no PEM certificate"):
        make_http_server(hello_app, "127.0.0.1", 0, tls_cert_file=str(bad_cert), tls_key_file=str(tls_files[1]))


def test_a_key_that_does_not_match_the_certificate_is_an_error_naming_it(tmp_path: Path, tls_files) -> None:
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    _, other_key = self_signed_certificate(other_folder)

    with pytest.raises(ConfigError, match=f"key file {other_key} is not a PEM private key matching certificate"):
        make_http_server(hello_app, "127.0.0.1", 0, tls_cert_file=str(tls_files[0]), tls_key_file=str(other_key))


def test_an_encrypted_key_is_an_error_not_a_passphrase_prompt(tmp_path: Path) -> None:
    cert_file, key_file = self_signed_certificate(tmp_path, encrypt_key=True)

    with pytest.raises(ConfigError, match=f"TLS key file {key_file} is encrypted"):
        make_http_server(hello_app, "127.0.0.1", 0, tls_cert_file=str(cert_file), tls_key_file=str(key_file))


def test_a_missing_key_file_is_an_error_naming_it(tmp_path: Path, tls_files) -> None:
    missing = tmp_path / "missing-key.pem"

    with pytest.raises(ConfigError, match=f"cannot read key file {missing}"):
        make_http_server(hello_app, "127.0.0.1", 0, tls_cert_file=str(tls_files[0]), tls_key_file=str(missing))


SERVE_APP = textwrap.dedent(
    """
    import sys
    from airflow_obs.exporter.config import load_config
    from airflow_obs.exporter.http_server import serve_app

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\\n"]

    serve_app(app, load_config(sys.argv[1], environ={}), 0)
    """
)


def test_serve_app_announces_https_requires_auth_and_stops_cleanly_on_sigterm(tmp_path: Path, tls_files) -> None:
    cert_file, key_file = tls_files
    config_file = tmp_path / "exporter.yml"
    config_file.write_text(
        f"tls_server_config:\n  cert_file: {cert_file.name}\n  key_file: {key_file.name}\n"
        f"basic_auth_users:\n  prometheus: '{USERS['prometheus']}'\n"
    )
    command = [sys.executable, "-c", SERVE_APP, str(config_file)]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the exporter did not announce itself within 20 s"
        line = proc.stdout.readline().strip()
        prefix, suffix = "[exporter] serving https://127.0.0.1:", "/metrics and /healthz"
        assert line.startswith(prefix) and line.endswith(suffix), line
        port = int(line.removeprefix(prefix).removesuffix(suffix))

        assert get(port, context=trusting(cert_file))[0] == 401
        assert get(port, credentials="prometheus:scrape-secret", context=trusting(cert_file))[0] == 200

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
