"""How often submissions are taken: token buckets per patient (the link's token) and per source
address. A leaked link must not be able to flood the pipeline, nor the nurses later; a
caregiver's check-in is only delayed by it (429 with Retry-After: the page keeps it queued and
sends it again then). The buckets are the kernel's (vitals/ratelimit.py), as alerting's API
guard's. Refusals are logged at most once per minute
per patient (and per address), so that the flood does not move into the log."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from vitals.ratelimit import Buckets

log = logging.getLogger(__name__)

MAX_KEYS = 10_000  # log lines' keys kept before the quiet ones are forgotten
LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class SubmitLimits:
    """Per patient: a day's check-ins, a neuro check and a few temperatures at once, then one
    every 10 s. Per address: generous, since many phones share one (a carrier's NAT, a care
    home, or every patient behind the site's reverse proxy, whose address is the one seen)."""

    patient_burst: int = 20
    patient_every_s: float = 10.0
    address_burst: int = 120
    address_every_s: float = 1.0


class SubmitGuard:
    """Whether a submission may go on now; otherwise how long until it may. A refused request
    takes no token from either bucket, so a flood that is refused holds nobody else back."""

    def __init__(self, limits: SubmitLimits = SubmitLimits(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.patients = Buckets(limits.patient_burst, limits.patient_every_s, clock)
        self.addresses = Buckets(limits.address_burst, limits.address_every_s, clock)
        self._logged: dict[str, tuple[float, int]] = {}  # key -> (last line at, refused since)

    def admit(self, patient_id: str, address: str) -> int:
        """0 if the submission may go on (a token taken from both buckets), else the whole
        seconds to wait (Retry-After)."""
        by_patient = self.patients.wait(patient_id)
        by_address = self.addresses.wait(address)
        if by_patient or by_address:
            key, what = ((f"patient {patient_id}", f"{self.limits.patient_burst} at once, "
                          f"then 1 per {self.limits.patient_every_s:g} s")
                         if by_patient else
                         (f"address {address}", f"{self.limits.address_burst} at once, then 1 "
                          f"per {self.limits.address_every_s:g} s"))
            self._note(key, what, patient_id, address)
            return max(1, math.ceil(max(by_patient, by_address)))
        self.patients.take(patient_id)
        self.addresses.take(address)
        return 0

    def _note(self, key: str, what: str, patient_id: str, address: str) -> None:
        """One warning per key per minute, counting the refusals in between."""
        now = self.clock()
        last, count = self._logged.get(key, (-math.inf, 0))
        if now - last < LOG_EVERY_S:
            self._logged[key] = (last, count + 1)
            return
        self._logged[key] = (now, 0)
        if len(self._logged) > MAX_KEYS:
            self._logged = {k: v for k, v in self._logged.items() if now - v[0] < LOG_EVERY_S}
        more = f"; {count} more refused in the minute before" if count else ""
        log.warning("%s: submissions over the rate limit (%s), from %s for %s: answered 429, "
                    "nothing published%s", key, what, address, patient_id, more)
