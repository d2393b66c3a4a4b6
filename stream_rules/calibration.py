"""A skin or axillary thermometer's own offset to core, from spot checks (issue #16).

The site correction (0.5 C by default) varies between people: a patch that reads 0.6 C below
core would hide a grade-1 fever forever. When a person takes a spot check with a home
thermometer at a core-like site (contract flag `manual`), each skin or axillary device of the
patient whose newest reading lies within `pair_within_min` gets `offset = spot check's core
equivalent - its reading`. An offset within `min_c`..`max_c` is kept (the last `keep`), and the
device's readings are corrected by their mean instead of the site's default; one outside is
not used, and the log says so. The page says which correction was used. The embedded bounds
(0.5-1.5 C) only ever raise the correction: an oral spot check reads a little below core
itself, so smaller offsets would lower a correct one.
"""

from __future__ import annotations

import logging

from stream_rules.config import Temperature
from stream_rules.rules.spec import MINUTE
from stream_rules.state import DeviceState, PatientState
from vitals.records import Reading

log = logging.getLogger(__name__)

CORE_LIKE = frozenset({"core", "oral", "tympanic"})
CALIBRATED = frozenset({"skin", "axillary"})


def correction_of(device: DeviceState, site: str | None, temperature: Temperature) -> float:
    """What to add to this device's reading for the core-equivalent: its calibrated offset,
    else its site's default (axillary when it does not say)."""
    if device.offsets:
        return round(sum(device.offsets) / len(device.offsets), 2)
    return temperature.site_correction_c.get(site or "axillary", 0.0)  # type: ignore[call-overload]


def calibrate(state: PatientState, spot_check: Reading, temperature: Temperature) -> None:
    """Pair a spot check with the patient's skin and axillary devices' newest readings."""
    calibration = temperature.calibration
    if calibration is None or spot_check.temp is None or spot_check.site not in CORE_LIKE:
        return
    core = spot_check.temp + temperature.site_correction_c.get(spot_check.site, 0.0)  # type: ignore[call-overload]
    for device_id, device in state.devices.items():
        if (device.kind != "temperature" or device.site not in CALIBRATED
                or device.last_temp is None
                or abs(spot_check.ts - device.last_ts) > calibration.pair_within_min * MINUTE):
            continue
        offset = round(core - device.last_temp, 2)
        if not calibration.min_c <= offset <= calibration.max_c:
            log.info("%s: a spot check of %.1f C against %s's %.1f C gives an offset of %+.2f C,"
                     " outside %.1f..%.1f C: not used", state.patient_id, spot_check.temp,
                     device_id, device.last_temp, offset, calibration.min_c, calibration.max_c)
            continue
        device.offsets = [*device.offsets, offset][-calibration.keep:]
        device.calibrated_at = spot_check.ts
