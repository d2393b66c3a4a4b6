"""Webhook signatures (alerting/notify/webhook.py): a timestamp and a per-target secret, as
Stripe signs its webhooks. Real deliveries to the HTTP stand-in are verified as a receiver
would; an old delivery replayed later and a delivery signed for another target are refused."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from alerting.notify.webhook import SIGNATURE_HEADER, sign, verify
from harness import services
from harness.command import vitals
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, event, make_settings

FEED_SECRET = "feed-secret-0123456789"
REGISTRAR_SECRET = "registrar-secret-0123456789"


def with_registrar_secret(oncall: Path) -> None:
    text = oncall.read_text()
    old = 'webhook: "'
    assert text.count(old) == 1
    oncall.write_text(text.replace(old, 'secret_env: REGISTRAR_HOOK_SECRET, webhook: "'))


def deliveries(tmp_path: Path, receiver: PagerDutyStandIn,
               monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Page steps 1 and 2: the feed (VITALS_WEBHOOK_SECRET) and the registrar's own webhook
    (its secret_env) each get a trigger; their requests by path."""
    monkeypatch.setenv("REGISTRAR_HOOK_SECRET", REGISTRAR_SECRET)
    settings = make_settings(tmp_path, receiver, webhook_secret=FEED_SECRET,
                             webhook_url=f"{receiver.base_url}/feed")
    assert settings.oncall is not None
    with_registrar_secret(settings.oncall)

    async def scenario() -> None:
        clock = Clock()
        core, d = build(settings, clock)
        core.handle(event())
        clock.advance(10)
        core.tick()
        await d.drain()
        await d.close()

    asyncio.run(scenario())
    out = {}
    for r in receiver.requests:
        if r.path in ("/feed", "/registrar"):
            out.setdefault(r.path, r)  # the first (trigger) of each
    assert set(out) == {"/feed", "/registrar"}
    return out


def test_each_target_verifies_its_delivery_with_its_own_secret(
        tmp_path: Path, receiver: PagerDutyStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    got = deliveries(tmp_path, receiver, monkeypatch)
    now = time.time()
    feed, registrar = got["/feed"], got["/registrar"]
    assert verify(feed.headers[SIGNATURE_HEADER], feed.raw, FEED_SECRET, now)  # type: ignore
    assert verify(registrar.headers[SIGNATURE_HEADER], registrar.raw,  # type: ignore
                  REGISTRAR_SECRET, now)
    assert registrar.json["receiver"].endswith("/registrar")  # type: ignore
    # the header: t=<unix seconds, now>,v1=<64 hex digits>
    t, v1 = registrar.headers[SIGNATURE_HEADER].split(",")  # type: ignore
    assert abs(int(t.removeprefix("t=")) - now) < 60 and len(v1.removeprefix("v1=")) == 64


def test_a_delivery_signed_for_another_target_is_refused(
        tmp_path: Path, receiver: PagerDutyStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    got = deliveries(tmp_path, receiver, monkeypatch)
    now = time.time()
    feed, registrar = got["/feed"], got["/registrar"]
    # the feed's delivery, replayed to the registrar, does not verify with the registrar's
    # secret, and the other way round; the two signatures differ
    assert not verify(feed.headers[SIGNATURE_HEADER], feed.raw,  # type: ignore
                      REGISTRAR_SECRET, now)
    assert not verify(registrar.headers[SIGNATURE_HEADER], registrar.raw,  # type: ignore
                      FEED_SECRET, now)
    assert feed.headers[SIGNATURE_HEADER] != registrar.headers[SIGNATURE_HEADER]  # type: ignore
    # a tampered body does not verify either
    assert not verify(registrar.headers[SIGNATURE_HEADER], registrar.raw + b" ",  # type: ignore
                      REGISTRAR_SECRET, now)


def test_an_old_delivery_replayed_is_refused(
        tmp_path: Path, receiver: PagerDutyStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    got = deliveries(tmp_path, receiver, monkeypatch)
    registrar = got["/registrar"]
    header, raw = registrar.headers[SIGNATURE_HEADER], registrar.raw  # type: ignore
    sent = int(header.split(",")[0].removeprefix("t="))
    assert verify(header, raw, REGISTRAR_SECRET, sent + 299)
    assert not verify(header, raw, REGISTRAR_SECRET, sent + 301)  # a replay 5 min later
    assert not verify(header, raw, REGISTRAR_SECRET, sent + 301, tolerance_s=300)
    # and the timestamp cannot be moved forward without the secret
    forged = header.replace(f"t={sent}", f"t={sent + 301}")
    assert not verify(forged, raw, REGISTRAR_SECRET, sent + 301)


def test_the_header_parser_refuses_what_is_not_a_signature() -> None:
    body, now = b'{"a":1}', 1_795_000_000.0
    good = sign("s", body, now)
    assert verify(good, body, "s", now)
    assert verify(f"{good},v1=00", body, "s", now)  # a second v1 (a secret being rotated)
    for bad in (None, "", "sha256=abc", good.split(",")[1], good.split(",")[0],
                good.replace("t=", "t=-"), "t=abc," + good.split(",")[1]):
        assert not verify(bad, body, "s", now), bad


def test_a_secret_env_that_is_not_set_stops_the_start_in_one_line(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    settings = make_settings(tmp_path, receiver)
    assert settings.oncall is not None
    with_registrar_secret(settings.oncall)
    env = services.environment(settings)
    env.pop("REGISTRAR_HOOK_SECRET", None)
    r = subprocess.run(vitals("alerting"), env=env, capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.strip().splitlines()
    assert "targets.registrar.secret_env: REGISTRAR_HOOK_SECRET is not set" in line
