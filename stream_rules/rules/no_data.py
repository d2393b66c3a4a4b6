"""No data: a device from which no valid reading has come for `after_min`, or for
`missed_intervals` of its own reporting interval when that is longer. A silent device leaves the
patient unmonitored. Judged per device: in event time on every combined minute, and live by the
wall clock (`silent_by_wall_clock`), sharing one rule state per device. Live, a device whose MQTT
last will said "offline" is paged as offline since that moment.

A spot-check device (its readings flagged `manual`: a person takes them when asked) has no
cadence to miss and is not judged here: a missed check is a matter of adherence, not a silent
sensor."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stream_rules.rules.spec import (
    MINUTE,
    Judgement,
    Minute,
    Minutes,
    RuleSpec,
    Severity,
    Strict,
    hhmm,
)
from stream_rules.state import DeviceState

NAME = "no_data"


class NoData(Strict):
    """Fires after `after_min` without a valid reading (or `missed_intervals` of the device's
    learned reporting interval, if longer); no durations: it clears on data."""

    source: str = Field(min_length=1)
    severity: Severity
    after_min: Minutes = Field(gt=0)
    missed_intervals: float = Field(default=3, ge=1, le=100)


def silent_after_ms(device: DeviceState, config: NoData) -> int | None:
    """How long `device` may be quiet before it counts as silent; None: never (a spot-check
    device). A 15-minute thermometer is not silent after two quiet intervals."""
    if device.manual:
        return None
    return max(int(config.after_min * MINUTE), int(config.missed_intervals * device.interval_ms))


def judge_no_data(at: Minute, config: NoData, device_id: str) -> Judgement:
    """In event time: how long the device has been without a valid reading at this minute's
    end (since its first reading, if none was ever valid)."""
    device = at.state.devices[device_id]
    after = silent_after_ms(device, config)
    if after is None:  # clears what an older state may have fired
        kind = device.kind
        return Judgement(False, True, float("nan"), lambda: {
            "device": device_id, "kind": kind, "manual": True})
    now = (at.minute + 1) * MINUTE
    last = device.last_valid_ts if device.last_valid_ts >= 0 else device.first_ts
    silent = now - last
    fire = silent >= after
    # the device's state changes with its next reading: what the page shows is read now
    kind, interval, last_valid = device.kind, device.interval_ms, device.last_valid_ts
    battery, sensor_off = device.battery, device.sensor_off
    return Judgement(fire, not fire, silent / MINUTE, lambda: {
        "device": device_id, "kind": kind, "silent_min": silent / MINUTE,
        "after_min": after / MINUTE, **_cadence(interval),
        "last_valid_at": last_valid if last_valid >= 0 else None,
        "battery": battery, "sensor_off": sensor_off})


def quiet_no_data(at: Minute, config: NoData, device_id: str) -> bool:
    """The device has not been silent for its time at this minute's end (`judge_no_data`
    would not fire): a valid reading came within it, or it takes spot checks."""
    device = at.state.devices[device_id]
    after = silent_after_ms(device, config)
    last = device.last_valid_ts if device.last_valid_ts >= 0 else device.first_ts
    return after is None or (at.minute + 1) * MINUTE - last < after


def _cadence(interval: int) -> dict[str, float]:
    """A device's learned reporting interval, when it is slower than a minute (worth saying
    on the page: "it reports every 15 min")."""
    return {"every_min": round(interval / MINUTE, 1)} if interval >= MINUTE else {}


def silent_by_wall_clock(device_id: str, device: DeviceState, now_ms: int, after_ms: int
                         ) -> Judgement:
    """Live: the firing judgement for a device nothing has been received from since
    `device.last_received` (the caller checks that this is at least `after_ms` ago)."""
    last = device.last_valid_ts if device.last_valid_ts >= 0 else device.first_ts
    silent_min = (now_ms - device.last_received) / MINUTE
    evidence = {
        "device": device_id, "kind": device.kind, "silent_min": silent_min,
        "after_min": after_ms / MINUTE, **_cadence(device.interval_ms), "last_valid_at": last,
        "battery": device.battery,
        "sensor_off": device.sensor_off, "judged_by": "wall clock"}
    if device.offline_at >= device.last_received:  # its last will said so
        evidence["offline_at"] = device.offline_at
    return Judgement(True, False, silent_min, lambda: evidence)


def _measured(evidence: dict[str, Any]) -> str:
    if evidence.get("manual"):
        return f"{evidence['device']} takes spot checks: it has no cadence to miss"
    if evidence.get("offline_at"):
        last = (f", last valid reading at {hhmm(evidence['last_valid_at'])}"
                if evidence.get("last_valid_at") else "")
        return (f"{evidence['device']} went offline at {hhmm(evidence['offline_at'])} (its "
                f"connection dropped; no reading for {evidence['silent_min']:.0f} min{last})")
    if evidence.get("last_valid_at") and evidence["silent_min"] < evidence["after_min"]:
        # cleared: a valid reading came (it may be newer than the judged minute)
        return (f"{evidence['device']} is sending again (a valid reading at "
                f"{hhmm(evidence['last_valid_at'])})")
    every = (f"it reports every {evidence['every_min']:g} min; "
             if evidence.get("every_min") else "")
    if evidence.get("last_valid_at"):
        return (f"no valid reading from {evidence['device']} for {evidence['silent_min']:.0f} "
                f"min ({every}last at {hhmm(evidence['last_valid_at'])})")
    return f"no valid reading from {evidence['device']}"


SPEC = RuleSpec(NAME, NoData, "combined", judge_no_data, "no data", _measured, per_device=True,
                quiet=quiet_no_data)
