"""The self-alert: when alerting itself cannot go on (its state store failed), it tells the
operators before it exits, over PagerDuty, straight from memory (the outbox is in the store
that failed). CONTRACT section 7: `payload.source` "vitals", `payload.class` "pipeline",
severity critical, to the on-call file's `operators:` team (its first step), or, without one,
to every team's first step: someone must learn that patients' alerts are not being paged.

The trigger is remembered in a marker file in the state directory (the routing keys that
accepted it, and when); a later start, once it has served for the on-call file's
`paging.self_alert_resolve_after_min`, resolves the self-alert at those keys and removes the
marker, so the operators' incident closes when alerting is back (and stays one incident while
alerting crash-loops)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import aiohttp

from alerting.notify.base import Outcome, http_session, post
from alerting.oncall import OnCall
from vitals.records import echo

log = logging.getLogger(__name__)
DEDUP_KEY = "vitals-alerting-down"
MARKER_NAME = "selfalert.json"  # in VITALS_STATE_DIR: the keys paged, until resolved


def routing_keys(oncall: OnCall, now: dt.datetime) -> list[str]:
    """The PagerDuty routing keys of the operators' first step, else of every team's."""
    teams = [oncall.operators] if oncall.operators else list(oncall.teams)
    keys: list[str] = []
    for team in teams:
        for name in oncall.teams[team].escalation[0].notify:
            _, target = oncall.resolve(name, now)
            if target.pagerduty and target.pagerduty not in keys:
                keys.append(target.pagerduty)
    return keys


def event(routing_key: str, reason: str, now: dt.datetime) -> dict[str, Any]:
    """The trigger for one routing key."""
    return {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": DEDUP_KEY,
        "client": "vitals alerting",
        "payload": {
            "summary": ("vitals alerting is down and cannot page patients' alerts: "
                        + reason)[:1024],
            "source": "vitals", "class": "pipeline", "severity": "critical",
            "component": "alerting", "timestamp": now.isoformat(),
            "custom_details": {"host": socket.gethostname(), "reason": reason},
        },
    }


async def _send(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                attempts: int) -> Outcome:
    """One event, retried with backoff while the answer says to retry."""
    data = json.dumps(body).encode()
    for attempt in range(attempts):
        outcome = await post(session, url, data, {"Content-Type": "application/json"})
        if outcome.ok or not outcome.retry or attempt == attempts - 1:
            break
        await asyncio.sleep(0.5 * 2 ** attempt)
    return outcome


async def page_operators(oncall: OnCall, pagerduty_url: str, reason: str,
                         attempts: int = 3, state_dir: Path | None = None) -> int:
    """Trigger the self-alert at every operator's routing key; how many accepted it. With
    `state_dir`, the keys that accepted it are remembered there for the next start to resolve.
    Never raises: the service is exiting anyway."""
    now = dt.datetime.now(dt.UTC)
    keys = routing_keys(oncall, now)
    if not keys:
        log.error("self-alert: no PagerDuty routing key to page (no operators: team, and no "
                  "team's first step has one)")
        return 0
    accepted: list[str] = []
    async with http_session() as session:
        for key in keys:
            outcome = await _send(session, pagerduty_url, event(key, reason, now), attempts)
            if outcome.ok:
                accepted.append(key)
            else:
                log.error("self-alert to PagerDuty failed: %s %s", outcome.status,
                          echo(outcome.body, 200))
    if accepted and state_dir is not None:
        remember(state_dir, accepted, now.isoformat())
    return len(accepted)


def remember(state_dir: Path, keys: list[str], paged_at: str) -> bool:
    """Write the marker (owner-only, replaced atomically); False, and one line in the log, if
    it cannot be written (a full disk): then nothing will resolve the operators' incident."""
    path = state_dir / MARKER_NAME
    tmp = path.with_name(path.name + ".tmp")
    data = json.dumps({"dedup_key": DEDUP_KEY, "routing_keys": keys,
                       "paged_at": paged_at}).encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        log.error("self-alert: could not remember it in %s (%s): the operators' incident %s "
                  "must be resolved by hand once alerting is back", path,
                  exc.strerror or exc, DEDUP_KEY)
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


def _resolve_event(routing_key: str) -> dict[str, Any]:
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": DEDUP_KEY,
            "client": "vitals alerting"}


async def resolve_operators(state_dir: Path, pagerduty_url: str, attempts: int = 3) -> int:
    """If an earlier run paged the operators (the marker exists), resolve the self-alert at
    the keys it paged, then remove the marker; how many accepted the resolve. Keys whose
    resolve failed for a reason worth retrying stay in the marker for the next start. Never
    raises: the service serves whatever happens here."""
    path = state_dir / MARKER_NAME
    try:
        marker = json.loads(path.read_bytes())
        keys = [key for key in marker["routing_keys"] if isinstance(key, str) and key]
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("self-alert: unreadable %s (%s): resolve %s by hand", path, exc, DEDUP_KEY)
        with contextlib.suppress(OSError):
            path.unlink()
        return 0
    resolved, again = 0, []
    async with http_session() as session:
        for key in keys:
            outcome = await _send(session, pagerduty_url, _resolve_event(key), attempts)
            if outcome.ok:
                resolved += 1
                continue
            log.error("self-alert: resolve at PagerDuty failed: %s %s", outcome.status,
                      echo(outcome.body, 200))
            if outcome.retry:  # PagerDuty unreachable or busy: the next start tries again
                again.append(key)
    if again:
        remember(state_dir, again, str(marker.get("paged_at", "")))
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if resolved:
        log.info("self-alert %s resolved at %d PagerDuty routing key(s)", DEDUP_KEY, resolved)
    return resolved
