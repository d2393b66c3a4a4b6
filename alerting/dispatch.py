"""Sends the outbox: every pending intent, in order per (incident, channel, target), with
retries for 429, 5xx and lost connections (honouring Retry-After). A receiver that is down is
retried until it answers, never given up on: a page is never dropped. After `max_attempts` the
delay is made visible (audit `delivery_delayed`, an error line, the API's `delivery_errors`),
and the retries go on. A refused request (400 and the like) is not retried: its status and body
go to the outbox row, the audit, and the API's `delivery_errors`.

An intent is marked sent only after the receiver answered; after a crash in between, the intent
is sent again at start (PagerDuty's dedup_key and the webhook's X-Vitals-Delivery make that
repeat harmless). The outbox is read and marked on the store thread, one job after another, so
the dispatcher only ever sees intents whose transaction has committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from alerting.notify.base import Notifier, Outcome
from alerting.store import Lane, Outbox, Row
from alerting.store.thread import StoreThread
from vitals.records import echo

log = logging.getLogger(__name__)


class Dispatcher:
    """Sends pending intents, each lane (incident, channel, target) in order."""

    def __init__(self, outbox: Outbox, notifiers: Mapping[str, Notifier],
                 now_ms: Callable[[], int], thread: StoreThread, max_attempts: int = 8,
                 backoff_s: float = 0.5, max_backoff_s: float = 60.0,
                 may_send: Callable[[], bool] = lambda: True) -> None:
        self.outbox = outbox
        self.notifiers = notifiers
        self.now_ms = now_ms
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.thread = thread  # the one that makes every call of the store (the core's too)
        # False while another alerting instance leads (`alerting.leader`): only the leader
        # sends; a lane stops before its next attempt, its intent left pending for the leader
        self.may_send = may_send
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # while `run` runs
        self._look_queued = False  # touched on the store thread only
        self._busy: dict[Lane, asyncio.Task[None]] = {}
        self.sent = 0

    def wake(self) -> None:
        """New intents are committed, or will be when the store job calling this ends: send
        them while `run` runs. Safe from any thread."""
        loop = self._loop
        if loop is None:
            return  # not running: `run` and `drain` look at the outbox when they start
        if self.thread.on_it():
            # Called inside the store job that wrote them: look in the next job, right after
            # its commit, with no round trip through the event loop first.
            if not self._look_queued:
                self._look_queued = True
                self.thread.submit(self._look)
        elif _running_loop() is loop:
            self._wake.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: send what is pending when woken, and at least every second."""
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                self._wake.clear()  # before looking: a wake while we look is not lost
                await self._start_due()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=1.0,
                                   return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            self._loop = None

    async def drain(self, timeout: float = 10.0) -> None:
        """Send everything pending now (tests and shutdown)."""
        await self._start_due()
        if self._busy:
            await asyncio.wait(list(self._busy.values()), timeout=timeout)

    async def close(self) -> None:
        """Stop sending; close the notifiers' connections."""
        for task in self._busy.values():
            task.cancel()
        for notifier in self.notifiers.values():
            await notifier.close()

    def _look(self) -> None:
        """On the store thread, right after the job that woke us: the pending intents, handed
        to the loop. Jobs run in order, so they are committed, and any later job's result
        (such as a lane marking one sent) reaches the loop after them."""
        self._look_queued = False
        loop = self._loop
        if loop is None:
            return
        try:
            heads = self.outbox.pending_heads()
            loop.call_soon_threadsafe(self._offer, heads)
        except Exception:  # the loop closed, the store failed: the next look will tell
            log.exception("looking at the outbox failed")

    def _offer(self, heads: list[Row]) -> None:
        """On the loop: lanes for these intents, while `run` runs."""
        if self._loop is not None and self.may_send():
            self._start_lanes(heads)

    async def _start_due(self) -> None:
        """A task for each lane with a pending intent that has none yet, from its oldest."""
        if self.may_send():
            self._start_lanes(await self.thread.run(self.outbox.pending_heads))

    def _start_lanes(self, heads: list[Row]) -> None:
        """A task for each head's lane that has none yet, starting from that head."""
        for head in heads:
            lane = _lane_of(head)
            if lane not in self._busy:  # a busy lane finds its next intent itself
                task = asyncio.get_running_loop().create_task(self._lane(lane, head))
                self._busy[lane] = task
                task.add_done_callback(lambda done, lane=lane: self._forget(lane, done))

    def _forget(self, lane: Lane, task: asyncio.Task[None]) -> None:
        if self._busy.get(lane) is task:
            del self._busy[lane]

    async def _lane(self, lane: Lane, intent: Row | None) -> None:
        """One receiver's intents in order: an acknowledge never overtakes its trigger."""
        while intent is not None:
            intent = await self._deliver(intent)
        # Free the lane at once, in the step that found it empty: an intent committed after
        # that look gets a task of its own from the wake that follows its commit.
        self._forget(lane, asyncio.current_task())  # type: ignore[arg-type]

    async def _deliver(self, intent: Row) -> Row | None:
        """Send one intent (with retries), mark it sent or failed; returns the lane's next.

        None, the intent left pending, when this instance stopped leading before sending it."""
        attempts, outcome = await self._attempt(intent)
        if outcome is None:
            return None
        following = await self.thread.run(self._finish, intent, attempts, outcome)
        if outcome.ok:
            self.sent += 1
        else:
            log.error("%s %s for %s failed after %d attempt(s): %s %s", intent["channel"],
                      intent["action"], intent["target"], attempts, outcome.status,
                      echo(outcome.body, 500))  # a server's answer: no forged log lines
        return following

    async def _attempt(self, intent: Row) -> tuple[int, Outcome | None]:
        """Send until done or refused; returns the attempts and the last outcome (None if
        this instance stopped leading first)."""
        notifier = self.notifiers.get(intent["channel"])
        attempts = intent["attempts"]
        outcome = Outcome(False, None, f"channel {intent['channel']} is not configured now")
        while notifier is not None:
            if not self.may_send():
                return attempts, None
            attempts += 1
            outcome = await notifier.send(intent["request"], intent["id"])
            if outcome.ok or not outcome.retry:
                break
            if attempts == 1:
                log.warning("%s %s for %s: %s %s; retrying", intent["channel"],
                            intent["action"], intent["target"], outcome.status,
                            echo(outcome.body, 200))
            elif attempts == self.max_attempts:
                await self.thread.run(self._delayed, intent, attempts, outcome)
            await asyncio.sleep(self._backoff(attempts, outcome))
        return attempts, outcome

    def _delayed(self, intent: Row, attempts: int, outcome: Outcome) -> None:
        """On the store thread: a receiver down for `max_attempts` attempts is made visible,
        once; the intent stays pending and is retried on."""
        now = self.now_ms()
        log.error("%s %s for %s not delivered after %d attempts: %s %s; retrying until it is",
                  intent["channel"], intent["action"], intent["target"], attempts,
                  outcome.status, echo(outcome.body, 500))
        with self.outbox.tx():
            self.outbox.finish_intent(intent["id"], "pending", attempts, now, outcome.status,
                                      outcome.body)
            self.outbox.audit(now, "delivery_delayed", patient_id=intent["patient_id"],
                              incident_id=intent["incident_id"], channel=intent["channel"],
                              target=intent["target"], status=str(outcome.status),
                              detail=f"{intent['action']} not delivered after {attempts} "
                                     f"attempts, retrying: {outcome.body[:500]}")

    def _backoff(self, attempts: int, outcome: Outcome) -> float:
        """0.5 s doubling up to 60 s; a Retry-After longer than that is honoured up to 300 s."""
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempts - 1))
        if outcome.retry_after_s is not None:
            delay = min(max(delay, outcome.retry_after_s), 300.0)
        return delay

    def _finish(self, intent: Row, attempts: int, outcome: Outcome) -> Row | None:
        """On the store thread: the intent marked and audited in one transaction; then the
        lane's next pending intent, if any."""
        now = self.now_ms()
        step = intent["step"]
        what = intent["action"] if step is None else f"{intent['action']} step {step + 1}"
        detail = f"{what} after {attempts} attempt(s)"
        if not outcome.ok:
            detail += f": {outcome.body[:500]}"
        with self.outbox.tx():
            self.outbox.finish_intent(intent["id"], "sent" if outcome.ok else "failed",
                                      attempts, now, outcome.status, outcome.body)
            self.outbox.audit(now, "notified" if outcome.ok else "delivery_failed",
                              patient_id=intent["patient_id"],
                              incident_id=intent["incident_id"], channel=intent["channel"],
                              target=intent["target"], status=str(outcome.status),
                              detail=detail)
        return self.outbox.next_pending(_lane_of(intent))


def _lane_of(intent: Row) -> Lane:
    """The lane of an intent: its incident, channel and target."""
    return intent["incident_id"], intent["channel"], intent["target"]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
