"""The canary (CONTRACT section 7): a reserved synthetic patient whose readings go through the
whole pipeline like any device's, so that alerting can tell, every round, that a fever still
reaches it. What every stage needs to recognise it lives here, in the kernel."""

from __future__ import annotations

DEVICE_ID = "canary"  # the canary's one device: vitals/v1/{VITALS_CANARY_PATIENT}/canary
RULE = "canary"  # the rule id of the event the rules emit for each canary reading
TEMP_C = 39.5  # a fever, measured at the core: what the canary proves still reaches a page


def reading(seq: int, ts_ms: int) -> dict[str, object]:
    """The payload of canary round `seq`, published at `ts_ms` (epoch ms, wall time)."""
    return {"ts": ts_ms, "kind": "temperature", "seq": seq, "temp": TEMP_C, "site": "core"}


def alert_id(device_id: str, seq: int | None, ts: int) -> str:
    """The id of the canary event of one reading: one per round, so none is a duplicate."""
    return f"canary-{device_id}-{seq if seq is not None else ts}"
