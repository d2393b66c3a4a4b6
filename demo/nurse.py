"""A simulated nurse, so the demo shows the whole loop: each new page is acknowledged over the
alerting API (as the nurse page does) a few seconds after it arrives, with the token of the
person paged. With `after_s` None nobody acknowledges and the pages wait for you on the nurse
page."""

from __future__ import annotations

import heapq
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from alerting.oncall import OnCall
from harness.pagerduty import Event


@dataclass
class Nurse:
    api: str  # http://host:port of `vitals alerting`
    oncall: OnCall
    after_s: float | None = 5.0
    acked: list[tuple[str, str]] = field(default_factory=list)  # (incident, by)
    failures: list[str] = field(default_factory=list)
    _due: list[tuple[float, str, str]] = field(default_factory=list)
    _acking: bool = False  # acknowledgements taken off `_due` and not yet answered
    _last_ack: float = 0.0  # monotonic time of the last answered one
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def token_for(self, routing_key: str) -> tuple[str, str]:
        """(person, token): the person the page went to if they have an API token (nurses
        do), else the first nurse with one."""
        tokens = self.oncall.tokens
        for name, target in self.oncall.targets.items():
            if target.pagerduty == routing_key and name in tokens:
                return name, tokens[name]
        name = next(iter(tokens))
        return name, tokens[name]

    def paged(self, event: Event) -> None:
        """PagerDuty stand-in callback: schedule an acknowledgement of each new trigger."""
        if self.after_s is None or event.action != "trigger":
            return
        if event.body.get("payload", {}).get("class") == "pipeline":
            return  # the operators' page (CONTRACT section 7), not a nurse's to acknowledge
        with self._lock:
            if any(key == event.dedup_key for _, key, _ in self._due) or any(
                    key == event.dedup_key for key, _ in self.acked):
                return
            heapq.heappush(self._due, (time.monotonic() + self.after_s, event.dedup_key,
                                       str(event.body.get("routing_key"))))

    def start(self) -> Nurse:
        self._thread = threading.Thread(target=self._loop, name="nurse", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                due = []
                while self._due and self._due[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._due))
                self._acking = bool(due)
            for _, incident, routing_key in due:
                self._ack(incident, *self.token_for(routing_key))
            if due:
                with self._lock:
                    self._acking, self._last_ack = False, time.monotonic()

    def settle(self, notified_s: float, limit_s: float) -> None:
        """Wait (at most `limit_s`) until every page received has been acknowledged, and then
        `notified_s` after the last acknowledgement, for alerting to tell PagerDuty."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._due and not self._acking:
                    wait = self._last_ack + notified_s - time.monotonic()
                    break
            time.sleep(0.1)
        else:
            return
        time.sleep(max(0.0, min(wait, deadline - time.monotonic())))

    def _ack(self, incident: str, person: str, token: str) -> None:
        url = f"{self.api}/alerts/{urllib.parse.quote(incident, safe='/')}/ack"
        req = urllib.request.Request(url, method="POST", data=b"",
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                state = json.loads(r.read()).get("state")
            self.acked.append((incident, person))
            if state not in ("acknowledged", "resolved"):
                self.failures.append(f"{incident}: state {state} after ack")
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409: already resolved or acknowledged by then; nothing to do
                self.failures.append(f"{incident}: HTTP {exc.code} {exc.read()[:200]!r}")
        except OSError as exc:
            self.failures.append(f"{incident}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
