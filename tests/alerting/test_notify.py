"""Channels against real servers on loopback: PagerDuty's retries and refusals, the signed
webhook, e-mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from aiosmtpd.smtp import AuthResult

from alerting.notify.webhook import SIGNATURE_HEADER, verify
from harness.servers import free_port
from tests.alerting.support import (
    CONTRACT_SCHEMA,
    SCHEMA_FILE,
    Clock,
    PagerDutyStandIn,
    build,
    event,
    make_settings,
)


def test_the_schema_check_has_teeth() -> None:
    """The teardown check of every captured request would catch a malformed event."""
    import jsonschema

    from tests.alerting.conftest import VALIDATOR

    good = {"routing_key": "k", "event_action": "trigger", "dedup_key": "P001-1",
            "payload": {"summary": "s", "source": "P001", "severity": "error"}}
    VALIDATOR.validate(good)
    for bad in ({**good, "event_action": "page"},
                {k: v for k, v in good.items() if k != "routing_key"},
                {**good, "payload": {"summary": "s", "source": "P001", "severity": "high"}},
                {**good, "payload": {"summary": "s", "severity": "error"}}):
        with pytest.raises(jsonschema.ValidationError):
            VALIDATOR.validate(bad)


def test_429_and_5xx_are_retried_honouring_retry_after(tmp_path: Path,
                                                        receiver: PagerDutyStandIn) -> None:
    receiver.respond(429, '{"status":"throttled"}', {"Retry-After": "0.3"})
    receiver.respond(502, "bad gateway")
    receiver.respond(503, "unavailable")

    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        core.handle(event())
        started = time.monotonic()
        await d.drain()
        assert time.monotonic() - started >= 0.29  # waited as PagerDuty asked (asyncio may
        # wake up to its clock resolution early)
        assert [r.json["event_action"] for r in receiver.requests] == ["trigger"] * 4
        [row] = core.store.db.execute("SELECT * FROM outbox").fetchall()
        assert (row["status"], row["attempts"], row["response_status"]) == ("sent", 4, 202)
        await d.close()

    asyncio.run(scenario())


def test_a_receiver_that_stays_down_is_retried_until_it_answers_and_the_delay_is_shown(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    """Never given up on: after `max_attempts` the delay is audited and in the API (status
    pending), and the retries go on until PagerDuty takes the page."""
    for _ in range(5):
        receiver.respond(500, "down")

    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        d.max_attempts = 3
        core.handle(event())
        await d._start_due()
        while len(receiver.requests) < 4:  # the delay is recorded at attempt 3
            await asyncio.sleep(0.01)
        [err] = core.open_alerts()[0]["delivery_errors"]
        assert (err["status"], err["response_status"]) == ("pending", 500)
        await d.drain(timeout=120)
        assert len(receiver.requests) == 6  # 5 refused, then taken
        [row] = core.store.db.execute("SELECT * FROM outbox").fetchall()
        assert (row["status"], row["attempts"], row["response_status"]) == ("sent", 6, 202)
        events = [r["event"] for r in core.store.audit_rows()]
        assert events.count("delivery_delayed") == 1 and "delivery_failed" not in events
        assert events[-1] == "notified"
        assert core.open_alerts()[0]["delivery_errors"] == []
        await d.close()

    asyncio.run(scenario())


def test_400_is_surfaced_in_the_audit_and_the_api_and_not_retried(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    body = '{"status":"invalid event","message":"Event object is invalid","errors":["x"]}'
    receiver.respond(400, body)

    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        core.handle(event())
        await d.drain()
        assert len(receiver.requests) == 1
        [failed] = [r for r in core.store.audit_rows() if r["event"] == "delivery_failed"]
        assert failed["status"] == "400" and "Event object is invalid" in failed["detail"]
        [err] = core.open_alerts()[0]["delivery_errors"]
        assert err["response_status"] == 400 and "invalid" in err["response_body"]
        await d.close()

    asyncio.run(scenario())


def test_a_servers_answer_cannot_forge_a_log_line(tmp_path: Path, receiver: PagerDutyStandIn,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    receiver.respond(400, "refused\n2026-11-30 12:00:00 INFO alerting: all pages delivered")

    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        core.handle(event())
        await d.drain()
        await d.close()

    with caplog.at_level(logging.ERROR, logger="alerting.dispatch"):
        asyncio.run(scenario())
    [line] = [r.getMessage() for r in caplog.records if "failed after" in r.getMessage()]
    assert "\n" not in line and "refused\\n2026" in line, line


def test_webhook_body_is_signed_and_the_receiver_verifies_it(tmp_path: Path,
                                                             receiver: PagerDutyStandIn) -> None:
    secret = "webhook-secret-for-tests"

    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver, webhook_secret=secret,
                                      webhook_url=f"{receiver.base_url}/feed"), clock)
        core.handle(event())
        clock.advance(10)
        core.tick()  # step 2: the registrar's own webhook
        await d.drain()
        hooks = [r for r in receiver.requests if r.path in ("/feed", "/registrar")]
        assert {r.path for r in hooks} == {"/feed", "/registrar"}
        for r in hooks:
            now = time.time()
            assert verify(r.headers[SIGNATURE_HEADER], r.raw, secret, now)
            assert not verify(r.headers[SIGNATURE_HEADER], r.raw + b" ", secret, now)
            assert not verify(r.headers[SIGNATURE_HEADER], r.raw, "another secret", now)
            assert r.headers["X-Vitals-Delivery"].isdigit()
        [reg] = [r.json for r in hooks if r.path == "/registrar"]
        assert reg["event"] == "trigger" and reg["patient_id"] == "P001"
        assert reg["escalation_step"] == 1 and reg["alerts"][0]["rule"] == "fever"
        assert reg["ack_url"].startswith("http://127.0.0.1:")
        await d.close()

    asyncio.run(scenario())


class Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list = []

    def handle_message(self, message) -> None:
        self.messages.append(message)


class Logins:
    """The AUTH attempts a server saw, and whether each was over TLS."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def __call__(self, server, session, envelope, mechanism, data) -> AuthResult:
        self.seen.append((data.login.decode(), session.ssl is not None))
        return AuthResult(success=data.login == b"vitals" and data.password == b"pw")


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, trusted by this process (SSL_CERT_FILE);
    the server's TLS context."""
    cert, key = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def smtp(certificate: ssl.SSLContext) -> Iterator[tuple[int, Inbox, Logins]]:
    """A server that requires STARTTLS before anything (AUTH included)."""
    inbox, logins = Inbox(), Logins()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=certificate,
                            require_starttls=True, authenticator=logins)
    controller.start()
    yield port, inbox, logins
    controller.stop()


@pytest.fixture
def plain_smtp() -> Iterator[tuple[int, Inbox, Logins]]:
    """A server without TLS that would take AUTH in clear."""
    inbox, logins = Inbox(), Logins()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=logins,
                            auth_require_tls=False)
    controller.start()
    yield port, inbox, logins
    controller.stop()


def email_row(core) -> dict:
    [row] = core.store.db.execute("SELECT * FROM outbox WHERE channel='email'").fetchall()
    return dict(row)


def page_charge_nurse(tmp_path: Path, receiver: PagerDutyStandIn, smtp_url: str) -> object:
    """Page steps 1 to 3 (the charge nurse is e-mailed); the core, once sent."""

    async def scenario() -> object:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver, step2=1, step3=2, smtp_url=smtp_url),
                        clock)
        core.handle(event(severity="critical"))
        clock.advance(2)
        core.tick()
        await d.drain()
        await d.close()
        return core

    return asyncio.run(scenario())


def test_smtp_logs_in_only_after_starttls(tmp_path: Path, receiver: PagerDutyStandIn,
                                          smtp: tuple[int, Inbox, Logins]) -> None:
    port, inbox, logins = smtp
    core = page_charge_nurse(tmp_path, receiver, f"smtp://vitals:pw@127.0.0.1:{port}")
    assert logins.seen == [("vitals", True)]  # AUTH came over TLS
    [mail] = inbox.messages
    assert mail["To"] == "charge@example.org"
    assert (email_row(core)["status"], email_row(core)["response_status"]) == ("sent", 250)


def test_smtp_refuses_a_server_without_starttls(tmp_path: Path, receiver: PagerDutyStandIn,
                                                plain_smtp: tuple[int, Inbox, Logins]) -> None:
    port, inbox, logins = plain_smtp
    core = page_charge_nurse(tmp_path, receiver, f"smtp://vitals:pw@127.0.0.1:{port}")
    assert logins.seen == [] and inbox.messages == []  # no credentials, no mail in clear
    row = email_row(core)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "does not offer STARTTLS" in row["response_body"]


def test_smtp_refuses_a_certificate_that_does_not_verify(
        tmp_path: Path, receiver: PagerDutyStandIn, smtp: tuple[int, Inbox, Logins],
        monkeypatch: pytest.MonkeyPatch) -> None:
    port, inbox, logins = smtp
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    core = page_charge_nurse(tmp_path, receiver, f"smtp://vitals:pw@127.0.0.1:{port}")
    assert logins.seen == [] and inbox.messages == []
    row = email_row(core)
    assert row["status"] == "failed" and "TLS with 127.0.0.1" in row["response_body"]


def test_smtps_is_tls_from_the_first_byte(tmp_path: Path, receiver: PagerDutyStandIn,
                                          certificate: ssl.SSLContext) -> None:
    inbox, logins = Inbox(), Logins()
    port = free_port()
    # the whole connection is TLS (aiosmtpd does not count implicit TLS for auth_require_tls)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=certificate,
                            authenticator=logins, auth_require_tls=False)
    controller.start()
    try:
        core = page_charge_nurse(tmp_path, receiver, f"smtps://vitals:pw@127.0.0.1:{port}")
    finally:
        controller.stop()
    assert [login for login, _ in logins.seen] == ["vitals"] and len(inbox.messages) == 1
    assert email_row(core)["status"] == "sent"


def test_smtp_insecure_sends_in_clear_when_asked(tmp_path: Path, receiver: PagerDutyStandIn,
                                                 plain_smtp: tuple[int, Inbox, Logins]) -> None:
    port, inbox, logins = plain_smtp
    core = page_charge_nurse(tmp_path, receiver, f"smtp+insecure://vitals:pw@127.0.0.1:{port}")
    assert logins.seen == [("vitals", False)] and len(inbox.messages) == 1
    assert email_row(core)["status"] == "sent"


def test_email_through_a_real_smtp_server(tmp_path: Path, receiver: PagerDutyStandIn,
                                          smtp: tuple[int, Inbox, Logins]) -> None:
    port, inbox, _ = smtp

    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver, step2=1, step3=2,
                                      smtp_url=f"smtp://127.0.0.1:{port}"), clock)
        core.handle(event(severity="critical"))
        clock.advance(2)
        core.tick()  # steps 2 and 3 at once: the charge nurse's e-mail
        await d.drain()
        [mail] = inbox.messages
        assert mail["To"] == "charge@example.org"
        assert mail["Subject"].startswith("[PAGE] P001: fever")
        text = mail.get_payload(decode=True).decode()
        for fact in ("Patient P001: CRITICAL", "38.4 °C", "since 2026-11-18T",
                     "trend: +0.4 C/h", "why: ASTCT", "Day 1.4 after CAR-T infusion",
                     "Escalation step 3", "Acknowledge: http://", "not a diagnosis"):
            assert fact in text, fact
        assert "grade" not in text.replace("or a CRS grade", "")
        [row] = core.store.db.execute("SELECT * FROM outbox WHERE channel='email'").fetchall()
        assert (row["status"], row["response_status"]) == ("sent", 250)
        await d.close()

    asyncio.run(scenario())


def test_a_long_summary_is_cut_to_pagerdutys_limit(tmp_path: Path,
                                                  receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        core.handle(event(summary="P001: fever: " + "very " * 400 + "high"))
        await d.drain()
        [t] = receiver.pd("trigger")
        assert len(t["payload"]["summary"]) == 1024 and t["payload"]["summary"].endswith("…")
        await d.close()

    asyncio.run(scenario())


def test_audit_csv_does_not_let_alert_text_become_a_formula() -> None:
    from alerting.audit import to_csv

    text = to_csv([{"id": 1, "at": 1_795_000_000_000, "event": "received",
                    "patient_id": "P001", "detail": "=HYPERLINK(1)"}])
    assert "'=HYPERLINK" in text and "2026-11-18T11:06:40.000+00:00" in text


@pytest.mark.skipif(not CONTRACT_SCHEMA.exists(), reason="../shared is not beside this clone")
def test_the_vendored_pagerduty_schema_is_the_contracts() -> None:
    assert SCHEMA_FILE.read_bytes() == CONTRACT_SCHEMA.read_bytes()
