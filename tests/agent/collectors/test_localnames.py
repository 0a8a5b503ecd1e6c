"""A listener's certificate is judged against every name the host is known by: a
virtual host's certificate on a real loopback TLS server matches when a local web
server is configured to serve that name (or /etc/hosts lists it), and not otherwise."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.collectors.base import CollectContext, CollectSettings, Issue
from agent.collectors.certificates import collect_certificates
from agent.collectors.localnames import (
    _APACHE,
    _NGINX,
    hosts_names,
    local_names,
    server_names,
)
from tests.agent.certs import NOW, make
from tests.agent.fakes import RecordedRunner

VHOST = "dichvucong.example.gov.vn"


def test_names_from_hosts_nginx_and_apache(tmp_path: Path) -> None:
    (tmp_path / "etc/nginx/sites-enabled").mkdir(parents=True)
    (tmp_path / "etc/apache2/sites-enabled").mkdir(parents=True)
    (tmp_path / "etc/hosts").write_text(
        "127.0.0.1 localhost\n127.0.1.1 web01.example.gov.vn web01 # this host\n"
    )
    (tmp_path / "etc/nginx/sites-enabled/portal").write_text(
        "server {\n  listen 443 ssl;\n  server_name dichvucong.example.gov.vn"
        " www.dichvucong.example.gov.vn *.cdn.example.gov.vn ~^api\\d+ _;\n}\n"
    )
    (tmp_path / "etc/apache2/sites-enabled/mail.conf").write_text(
        "<VirtualHost *:443>\n  ServerName mail.example.gov.vn:443\n"
        "  ServerAlias webmail.example.gov.vn\n  # ServerAlias old.example.gov.vn\n"
        "</VirtualHost>\n"
    )
    ctx = CollectContext(root=tmp_path)
    issues: list[Issue] = []
    names = local_names(ctx, ["web01", "web01.example.gov.vn"], issues)
    assert names == [
        "web01",
        "web01.example.gov.vn",
        "localhost",
        "dichvucong.example.gov.vn",
        "www.dichvucong.example.gov.vn",
        "mail.example.gov.vn",
        "webmail.example.gov.vn",
    ]
    assert issues == []


def test_parsers_skip_what_names_no_host() -> None:
    assert hosts_names("# 10.0.0.1 commented\n::1 ip6-localhost ip6-loopback\n") == [
        "ip6-localhost",
        "ip6-loopback",
    ]
    assert server_names("server_name _ ~^(www\\.)?x$ *.x.vn;", _NGINX) == []
    assert server_names('serveralias "a.vn" b.vn.\n', _APACHE) == ["a.vn", "b.vn"]


@pytest.fixture
def vhost_server(tmp_path: Path) -> Iterator[int]:
    leaf = make(VHOST, dns=(VHOST,), serial=11)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem())
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "key.pem")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@pytest.mark.parametrize("served", [True, False])
def test_virtual_host_certificate_on_a_real_listener(
    vhost_server: int, tmp_path: Path, served: bool
) -> None:
    root = tmp_path / "root"
    (root / "etc/nginx/conf.d").mkdir(parents=True)
    if served:
        (root / "etc/nginx/conf.d/portal.conf").write_text(f"server {{ server_name {VHOST}; }}\n")
    ctx = CollectContext(
        root=root,
        run=RecordedRunner(),  # the real system facade: the socket is found by psutil
        settings=CollectSettings(certificate_paths=()),
        now=lambda: NOW,
        fqdn_resolver=lambda _name: "web01.example.gov.vn",
    )
    items = [i for i in collect_certificates(ctx).data if i["port"] == vhost_server]
    assert [i["subject"] for i in items] == [f"CN={VHOST}"]
    assert items[0]["hostname_matches"] is served
