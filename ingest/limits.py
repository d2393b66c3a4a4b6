"""The contract's limits (CONTRACT sections 1 and 2), in one place."""

import datetime as dt

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_BATCH_READINGS = 1000
# Device time further ahead of receipt than this is clock skew.
MAX_AHEAD_MS = 5 * 60 * 1000
# Before this, a device's clock was never set (cheap devices boot at 1970 or 2000).
EARLIEST_TS_MS = int(dt.datetime(2010, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)

# Plausible ranges; outside them a reading is `out_of_range`. `pi` is an extension.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "temp": (25.0, 45.0),
    "hr": (20.0, 250.0),
    "spo2": (50.0, 100.0),
    "rr": (3.0, 80.0),
    "pi": (0.0, 100.0),
}

# "No value" sentinels that low-cost BLE oximeters send when the finger is out.
SPO2_SENTINELS = (127, 0)
HR_SENTINELS = (255, 0)
