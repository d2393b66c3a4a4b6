"""Sends the outbox: every pending intent, in order per (incident, channel, target), with
retries for 429, 5xx and lost connections (honouring Retry-After) and a bounded number of
attempts. A refused request (400 and the like) is not retried: its status and body go to the
outbox row, the audit, and the API's `delivery_errors`.

An intent is marked sent only after the receiver answered; after a crash in between, the intent
is sent again at start (PagerDuty's dedup_key and the webhook's X-Vitals-Delivery make that
repeat harmless).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from alerting.notify.base import Notifier, Outcome
from alerting.store import Store

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, store: Store, notifiers: dict[str, Notifier], now_ms: Callable[[], int],
                 max_attempts: int = 8, backoff_s: float = 0.5, max_backoff_s: float = 60.0
                 ) -> None:
        self.store = store
        self.notifiers = notifiers
        self.now_ms = now_ms
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._busy: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self.sent = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._start_due()
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=1.0,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def drain(self, timeout: float = 10.0) -> None:
        """Send everything pending now (tests and shutdown)."""
        self._start_due()
        if self._busy:
            await asyncio.wait(list(self._busy.values()), timeout=timeout)

    async def close(self) -> None:
        for task in self._busy.values():
            task.cancel()
        for n in self.notifiers.values():
            await n.close()

    def _start_due(self) -> None:
        keys = {(r["incident_id"], r["channel"], r["target"]) for r in self.store.pending()}
        for key in keys:
            if key not in self._busy:
                task = asyncio.get_running_loop().create_task(self._lane(key))
                self._busy[key] = task
                task.add_done_callback(lambda _t, k=key: self._busy.pop(k, None))

    async def _lane(self, key: tuple[str, str, str]) -> None:
        """One receiver's intents in order: an acknowledge never overtakes its trigger."""
        while True:
            row = self.store.db.execute(
                "SELECT * FROM outbox WHERE status='pending' AND incident_id=? AND channel=? "
                "AND target=? ORDER BY id LIMIT 1", key).fetchone()
            if row is None:
                return
            await self._deliver(row)

    async def _deliver(self, row) -> None:
        notifier = self.notifiers.get(row["channel"])
        request = json.loads(row["request"])
        attempts = row["attempts"]
        outcome = Outcome(False, None, f"channel {row['channel']} is not configured now")
        while notifier is not None and attempts < self.max_attempts:
            attempts += 1
            outcome = await notifier.send(request, row["id"])
            if outcome.ok or not outcome.retry:
                break
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempts - 1))
            if outcome.retry_after_s is not None:
                delay = min(max(delay, outcome.retry_after_s), 300.0)
            if attempts == 1:
                log.warning("%s %s for %s: %s %s; retrying", row["channel"], row["action"],
                            row["target"], outcome.status, outcome.body[:200])
            await asyncio.sleep(delay)
        status = "sent" if outcome.ok else "failed"
        now = self.now_ms()
        what = row["action"] if row["step"] is None else f"{row['action']} step {row['step'] + 1}"
        detail = f"{what} after {attempts} attempt(s)"
        if not outcome.ok:
            detail += f": {outcome.body[:500]}"
        with self.store.tx():
            self.store.finish_intent(row["id"], status, attempts, now, outcome.status,
                                     outcome.body)
            self.store.audit(now, "notified" if outcome.ok else "delivery_failed",
                             patient_id=row["patient_id"], incident_id=row["incident_id"],
                             channel=row["channel"], target=row["target"],
                             status=str(outcome.status), detail=detail)
        if outcome.ok:
            self.sent += 1
        else:
            log.error("%s %s for %s failed after %d attempt(s): %s %s", row["channel"],
                      row["action"], row["target"], attempts, outcome.status,
                      outcome.body[:500])
