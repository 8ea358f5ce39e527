"""TLS end to end on loopback: the room server serves HTTPS/WSS with a certificate from a test
CA made here with the openssl command; clients trust that CA through SSL_CERT_FILE, join the
https:// room over wss:// and a bot's speech reaches a listener. An untrusted certificate fails
the join at once with a clear error (no hang)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from conftest import SPEECH_16K, Capture, Waiter, Watch, join, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack
from daily.server import RoomServer

import speechmetrics as sm

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command (Debian openssl)")


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: str, tag: str) -> dict[str, str]:
    """A CA and a server certificate it signed for 127.0.0.1 and localhost (PEM files in d)."""
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", f"/CN=open-daily test CA {tag}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return {k: os.path.join(d, f) for k, f in [("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key")]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")), "trusted")


@pytest.fixture(scope="module")
def tls_server(pki):
    with RoomServer(host="127.0.0.1", port=0, tls_cert=pki["cert"], tls_key=pki["key"]) as s:
        yield s


@pytest.fixture
def trust_test_ca(pki, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", pki["ca"])


def test_urls_are_https(tls_server):
    assert tls_server.url.startswith("https://127.0.0.1:")
    assert tls_server.room_url("r").startswith("https://")
    assert tls_server.api_url.startswith("https://")


def test_speech_reaches_a_listener_over_wss(tls_server, trust_test_ca):
    url = tls_server.room_url("secure")
    sent, rate = sm.read_wav_mono16(SPEECH_16K)
    sent = sent[: 6 * rate]
    watch = Watch()
    listener = CallClient(event_handler=watch)
    source = CustomAudioSource(rate, 1)
    track = CustomAudioTrack(source)
    bot = CallClient()
    bot.set_user_name("bot")
    cap = Capture()
    try:
        t0 = time.monotonic()
        join(listener, url)
        join_ms = (time.monotonic() - t0) * 1000
        join(bot, url, client_settings=mic_settings(track))
        watch.wait(lambda: "bot" in watch.joined)
        listener.set_audio_renderer(watch.joined["bot"]["id"], cap, sample_rate=rate, callback_interval_ms=20)
        time.sleep(0.2)
        source.write_frames(sent.astype("<i2").tobytes())  # blocks at real-time pace
        time.sleep(0.5)
    finally:
        for c in (bot, listener):
            try:
                leave(c)
            finally:
                c.release()
    received = cap.pcm()
    sim = sm.similarity(sent, received, rate)
    print(f"wss join {join_ms:.0f} ms, similarity {sim:.3f}")
    assert len(received) > 4 * rate, len(received)
    assert sim >= 0.8, sim


def test_an_untrusted_certificate_fails_the_join_at_once(tmp_path, tls_server, monkeypatch):
    # Trust only another CA: the server's certificate does not chain to it.
    other = make_pki(str(tmp_path / "other"), "other")
    monkeypatch.setenv("SSL_CERT_FILE", other["ca"])
    errors: list[str] = []

    from daily import EventHandler

    class Errors(EventHandler):
        def on_error(self, message):
            errors.append(message)

    client = CallClient(event_handler=Errors())
    try:
        w = Waiter()
        t0 = time.monotonic()
        client.join(tls_server.room_url("secure"), completion=w)
        data, error = w.wait(10)
        took = time.monotonic() - t0
    finally:
        client.release()
    assert data is None
    assert error and "certificate is not trusted" in error and "SSL_CERT_FILE" in error, error
    assert took < 2.0, took


def test_an_unreadable_ssl_cert_file_is_named_in_the_join_error(tmp_path, tls_server, monkeypatch):
    missing = tmp_path / "nope.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    client = CallClient()
    try:
        w = Waiter()
        client.join(tls_server.room_url("secure"), completion=w)
        data, error = w.wait(10)
    finally:
        client.release()
    assert data is None and error and "nope.pem" in error, error


def test_tls_arguments_are_checked(pki, tmp_path):
    with pytest.raises(ValueError, match="go together"):
        RoomServer(tls_cert=pki["cert"]).start()
    with pytest.raises(ValueError, match="missing.pem"):
        RoomServer(tls_cert=str(tmp_path / "missing.pem"), tls_key=pki["key"]).start()
    with pytest.raises(ValueError, match="join_timeout"):
        RoomServer(join_timeout=0).start()
    with pytest.raises(ValueError, match="max_connections_per_ip"):
        RoomServer(max_connections_per_ip=0).start()


def test_a_connection_limit_gives_a_clear_join_error(pki):
    # Over the per-address cap the server answers 429 before the WebSocket upgrade; the join
    # fails at once and says why.
    import socket

    with RoomServer(host="127.0.0.1", port=0, max_connections_per_ip=2) as s:
        host, port = s.url.rsplit("/", 1)[-1].split(":")
        held = [socket.create_connection((host, int(port))) for _ in range(2)]
        client = CallClient()
        try:
            w = Waiter()
            t0 = time.monotonic()
            client.join(s.room_url("busy"), completion=w)
            data, error = w.wait(10)
            took = time.monotonic() - t0
        finally:
            client.release()
            for h in held:
                h.close()
    assert data is None
    assert error and "429" in error and "limit 2" in error, error
    assert took < 2.0, took


def test_the_call_page_joins_over_https_and_wss(tls_server, trust_test_ca):
    # The reason to serve TLS at all: browsers give the microphone only to https:// pages. The
    # page builds its wss:// URL from its own location. Chromium is told to accept the test
    # CA's certificate with --ignore-certificate-errors (its own trust store is NSS's).
    tb = pytest.importorskip("test_browser")
    if not os.path.exists(tb.CHROMIUM):
        pytest.skip("needs Debian's chromium")
    p = tb.playwright_api.sync_playwright().start()
    browser = p.chromium.launch(executable_path=tb.CHROMIUM, headless=True,
                                args=[*tb.FLAGS, "--ignore-certificate-errors"])
    watch = Watch()
    listener = CallClient(event_handler=watch)
    cap = Capture()
    try:
        url = tls_server.room_url("page")
        join(listener, url)
        page = tb.open_page(browser, url + "?autojoin=1&name=Browser")
        tb.wait_joined(page)
        assert page.evaluate("location.protocol") == "https:"
        watch.wait(lambda: "Browser" in watch.joined, timeout=15)
        listener.set_audio_renderer(watch.joined["Browser"]["id"], cap, sample_rate=16000, callback_interval_ms=20)
        deadline = time.monotonic() + 10
        while len(cap.pcm()) < 16000 * 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        # The fake microphone plays speech: two seconds of it arrived, and not silence.
        received = cap.pcm()
        assert len(received) >= 16000 * 2, len(received)
        assert np.abs(received.astype(np.int32)).max() > 1000
    finally:
        leave(listener)
        listener.release()
        browser.close()
        p.stop()
