"""The exporter's HTTP(S) server: prometheus_client's threading WSGI server, optionally TLS and basic auth."""

from __future__ import annotations

import logging
import ssl
import sys
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer, make_server

from airflow_obs.exporter.auth import require_basic_auth
from airflow_obs.exporter.config import ConfigError, ExporterConfig
from prometheus_client.exposition import ThreadingWSGIServer, _get_best_family, _SilentHandler

from airflow_obs.serving import serve_until_stopped

log = logging.getLogger(__name__)

WSGIApp = Callable[..., Iterable[bytes]]


class _Handler(_SilentHandler):
    # A client that connects and stalls (or never finishes its TLS handshake) ties up one thread, and not forever.
    timeout = 30


def _server_class(host: str, port: int) -> type[ThreadingWSGIServer]:
    family, _ = _get_best_family(host, port)  # AF_INET6 for an IPv6 host, as prometheus_client does

    class Server(ThreadingWSGIServer):
        address_family = family

        def handle_error(self, request: object, client_address: object) -> None:
            # Failed handshakes, plain HTTP on the TLS port and clients hanging up are the client's problem:
            # a debug line, not a traceback on stderr per port scan.
            error = sys.exc_info()[1]
            if isinstance(error, ssl.SSLError | ConnectionError | TimeoutError):
                log.debug("client %s: %s", client_address, error)
                return
            super().handle_error(request, client_address)

    return Server


def _tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    def no_passphrase() -> bytes:
        # Without this OpenSSL would prompt on the terminal and hang a service that has none.
        raise ConfigError(f"TLS key file {key_file} is encrypted; the exporter needs an unencrypted key")

    try:
        context.load_cert_chain(cert_file, key_file, password=no_passphrase)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise ConfigError(f"TLS: {_blame(cert_file, key_file, exc)}") from None
    return context


def _blame(cert_file: str, key_file: str, exc: OSError) -> str:
    """Which of the two files load_cert_chain choked on: its error does not say."""
    for name, path in (("certificate", cert_file), ("key", key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as missing:
            return f"cannot read {name} file {path}: {missing.strerror}"
    try:
        ssl.create_default_context(cafile=cert_file)
    except ssl.SSLError:
        return f"certificate file {cert_file} holds no PEM certificate"
    return f"key file {key_file} is not a PEM private key matching certificate {cert_file} ({exc})"


def make_http_server(
    app: WSGIApp, host: str, port: int, *, tls_cert_file: str | None = None, tls_key_file: str | None = None
) -> WSGIServer:
    """A bound, not yet serving, server for `app`; port 0 picks a free port (read `server.server_port`)."""
    if (tls_cert_file is None) != (tls_key_file is None):
        raise ConfigError("TLS needs both a certificate file and a key file (or neither)")
    # The context first: a bad certificate then fails before a port is taken.
    context = None if tls_cert_file is None or tls_key_file is None else _tls_context(tls_cert_file, tls_key_file)
    server = make_server(host, port, app, _server_class(host, port), handler_class=_Handler)
    if context is not None:
        # The handshake happens on the handler's first read, on the request's own thread, under its timeout;
        # handshaking in accept() would let one silent client stall the whole server.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.base_environ["HTTPS"] = "on"  # so the app sees wsgi.url_scheme == "https"
    return server


def serve_app(app: WSGIApp, config: ExporterConfig, port: int) -> None:
    """Serve `app` (behind basic auth when users are configured) until SIGTERM or SIGINT. Main thread only."""
    if config.basic_auth_users:
        app = require_basic_auth(app, config.basic_auth_users)
    server = make_http_server(
        app, config.host, port, tls_cert_file=config.tls_cert_file, tls_key_file=config.tls_key_file
    )
    scheme = "https" if config.tls_cert_file else "http"
    host = f"[{config.host}]" if ":" in config.host else config.host
    serve_until_stopped(server, "exporter", f"serving {scheme}://{host}:{server.server_port}/metrics and /healthz")
