"""A skin or axillary thermometer's own offset to core, from spot checks (issue #16), decided
by event time alone.

The site correction (0.5 C by default) varies between people: a patch that reads 0.6 C below
core would hide a grade-1 fever forever. When a person takes a spot check with a home
thermometer at a core-like site (contract flag `manual`), each skin or axillary device of the
patient gets `offset = spot check's core equivalent - its newest reading at or before the spot
check`, if that reading lies within `pair_within_min`. An offset within `min_c`..`max_c` is kept
(the last `keep`), and the device's readings from the minute after the spot check on are
corrected by their mean instead of the site's default; one outside is not used, and the log
says so. The page says which correction was used. The embedded bounds (0.5-1.5 C) only ever
raise the correction: an oral spot check reads a little below core itself, so smaller offsets
would lower a correct one.

Why by event time: a patient's devices are separate MQTT clients, so their messages can reach
Kafka interleaved otherwise than they were taken (a redelivery, a buffer, a fast replay). So a
temperature waits in its minute uncorrected (under `temp@{device}`), each device keeps its
last hour of raw readings, and a spot check is paired when its minute closes, once the
stragglers of that minute are in: the same readings give the same corrections in any order.
"""

from __future__ import annotations

import bisect
import logging
from typing import TYPE_CHECKING

from stream_rules.state import DeviceState, PatientState
from vitals.records import Reading

if TYPE_CHECKING:  # the rules file imports the rules, which read `described`
    from stream_rules.config import Temperature

MINUTE = 60_000

log = logging.getLogger(__name__)

CORE_LIKE = frozenset({"core", "oral", "tympanic"})
CALIBRATED = frozenset({"skin", "axillary"})
RAW = "temp@"  # an open minute's samples of one thermometer, not yet corrected
HISTORY_MS = 60 * MINUTE  # raw readings kept per calibrated device, beyond the pair window


def raw_key(device_id: str) -> str:
    """Where an open minute keeps one device's raw temperatures."""
    return RAW + device_id


def correction_of(device: DeviceState, site: str | None, minute: int,
                  temperature: Temperature) -> float:
    """What to add to this device's reading in `minute` for the core-equivalent: the mean of
    the offsets of the spot checks taken before that minute, else its site's default
    (axillary when it does not say)."""
    applying = [offset for offset, at in zip(device.offsets, device.offset_at, strict=True)
                if at // MINUTE < minute]
    if applying:
        return round(sum(applying) / len(applying), 2)
    return temperature.site_correction_c.get(site or "axillary", 0.0)  # type: ignore[call-overload]


def remember(device: DeviceState, reading: Reading, temperature: Temperature) -> None:
    """Keep a skin or axillary reading (raw) for the spot checks to come, in time order."""
    calibration = temperature.calibration
    if calibration is None or reading.site not in CALIBRATED or reading.temp is None:
        return
    index = bisect.bisect_right(device.recent_ts, reading.ts)
    device.recent_ts.insert(index, reading.ts)
    device.recent_temp.insert(index, reading.temp)
    horizon = device.recent_ts[-1] - calibration.pair_within_min * MINUTE - HISTORY_MS
    drop = bisect.bisect_left(device.recent_ts, horizon)
    if drop:
        del device.recent_ts[:drop], device.recent_temp[:drop]


def spot_check(state: PatientState, reading: Reading, temperature: Temperature) -> None:
    """A person's spot check at a core-like site: paired when its minute closes (`settle`)."""
    if temperature.calibration is None or reading.temp is None \
            or reading.site not in CORE_LIKE:
        return
    core = reading.temp + temperature.site_correction_c.get(reading.site, 0.0)  # type: ignore[call-overload]
    bisect.insort(state.spot_checks, (reading.ts, round(core, 2)))


def settle(state: PatientState, minute: int, temperature: Temperature) -> None:
    """Pair the spot checks taken up to `minute`, which is closing, with the skin and axillary
    devices' newest readings at or before them."""
    calibration = temperature.calibration
    if calibration is None or not state.spot_checks or state.spot_checks[0][0] // MINUTE > minute:
        return
    due = [check for check in state.spot_checks if check[0] // MINUTE <= minute]
    state.spot_checks = state.spot_checks[len(due):]
    for ts, core in due:
        for device_id, device in sorted(state.devices.items()):
            index = bisect.bisect_right(device.recent_ts, ts) - 1
            if index < 0 or ts - device.recent_ts[index] > calibration.pair_within_min * MINUTE:
                continue
            offset = round(core - device.recent_temp[index], 2)
            if not calibration.min_c <= offset <= calibration.max_c:
                log.info("%s: a spot check of %.1f C (core) against %s's %.1f C gives an offset "
                         "of %+.2f C, outside %.1f..%.1f C: not used", state.patient_id, core,
                         device_id, device.recent_temp[index], offset, calibration.min_c,
                         calibration.max_c)
                continue
            device.offsets = [*device.offsets, offset][-calibration.keep:]
            device.offset_at = [*device.offset_at, ts][-calibration.keep:]
            device.calibrated_at = ts


def corrected(state: PatientState, samples: dict[str, list[float]], minute: int,
              temperature: Temperature, describe: bool) -> dict[str, list[float]]:
    """A temperature minute's samples with each device's raw readings corrected to core, as
    `{"temp": [...]}`. A spot check counts only in a minute no wearable covers: beside one it
    calibrates (`settle`), and a minute's value must not depend on whether the spot check
    came before the wearable's reading closed the minute. With `describe`, the device the
    patient's temperature is shown for becomes the one that gave the minute most readings."""
    out = list(samples.get("temp", ()))  # a state written before raw keys: corrected already
    leading: tuple[int, str] | None = None
    devices = {key[len(RAW):]: values for key, values in samples.items() if key.startswith(RAW)}
    worn = {device_id for device_id in devices
            if not getattr(state.devices.get(device_id), "manual", False)}
    for device_id, values in sorted(devices.items()):
        if worn and device_id not in worn:
            continue
        device = state.devices.get(device_id)
        site = device.site if device is not None else None
        correction = (correction_of(device, site, minute, temperature) if device is not None
                      else temperature.site_correction_c.get(site or "axillary", 0.0))  # type: ignore[call-overload]
        out += [value + correction for value in values]
        if describe and device is not None and (leading is None or len(values) > leading[0]):
            leading = (len(values), device_id)
    if leading is not None:
        state.temp_device = leading[1]
    return {"temp": out} if out else {}


def described(state: PatientState, minute: int, temperature: Temperature
              ) -> tuple[str, float, int]:
    """The site, correction and spot check's time (-1: the site's default) of the patient's
    shown thermometer as they apply to `minute`: by event time, as its samples were corrected."""
    device = state.devices.get(state.temp_device or "")
    if device is None:  # a state written before `temp_device`
        site = state.temp_site or "axillary"
        correction = (state.temp_correction if state.temp_correction is not None else
                      temperature.site_correction_c.get(site, 0.0))  # type: ignore[call-overload]
        return site, correction, state.temp_calibrated_at
    site = device.site or "axillary"
    taken = [at for at in device.offset_at if at // MINUTE < minute]
    return (site, correction_of(device, site, minute, temperature),
            max(taken) if taken else -1)

