"""The fever and tachycardia windows of the CRS rules written as a Quix Streams app: the
alternative a user would pick instead of the project's Faust worker and pure engine.

It runs in its own virtual environment (bench/quix_rules.py makes it), because quixstreams
pins confluent-kafka < 2.13 and pydantic < 2.14 while the project pins newer ones; so it
imports nothing from the project. Usage:

    python bench/quix_app.py PARAMS_JSON

PARAMS_JSON: bootstrap, topic, alerts_topic, group, state_dir, expect (readings to process
before stopping), and the rules' numbers (see bench/quix_rules.py). It prints one JSON line
at the end: readings processed, the wall times of the start, the first and the last reading,
and the (patient, rule) pairs that fired.

What it computes, per patient (the Kafka key) and in event time (the reading's `ts`):
- fever: core-equivalent temperature (the site correction added), a hopping window of
  `fever.window_min` stepping each minute; the median of the minutes' medians, known with at
  least `min_samples` minutes of data; fires when >= `fire_at` has held `fire_after_min`,
  clears below `clear_below` after `clear_after_min`;
- tachycardia: the same over heart rate, with its own window and thresholds.
The engine's other ten rules, trends, NEWS2 and de-duplication are not reproduced, so this app
does less work per reading than the Faust worker.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from quixstreams import Application
from quixstreams.state import State

ARTEFACTS = {"motion", "probe_off", "low_perfusion"}
MINUTE = 60_000


class Progress:
    def __init__(self, app: Application, expect: int) -> None:
        self.app, self.expect = app, expect
        self.n, self.first, self.last = 0, 0.0, 0.0

    def count(self, _value: object) -> None:
        self.n += 1
        now = time.time()
        if self.n == 1:
            self.first = now
        self.last = now
        if self.n >= self.expect:
            self.app.stop()


def minute_level(values: list[list[float]], min_samples: int) -> float | None:
    """Median of per-minute medians (the engine's sustained level), None without enough data."""
    by_minute: dict[int, list[float]] = defaultdict(list)
    for minute, v in values:
        by_minute[int(minute)].append(v)
    if len(by_minute) < min_samples:
        return None
    return statistics.median(statistics.median(vs) for vs in by_minute.values())


def judge(rule: str, cfg: dict[str, Any], fired: set[tuple[str, str]]) -> Callable[..., Any]:
    """A stateful step per closed window: the engine's hysteresis (stream_rules.hysteresis)."""

    def step(window: dict[str, Any], key: Any, _ts: int, _headers: Any, state: State
             ) -> dict[str, Any] | None:
        level = minute_level(window["value"], cfg["min_samples"])
        minute = window["end"] // MINUTE - 1
        fire = level is not None and level >= cfg["fire_at"]
        clear = level is not None and level < cfg["clear_below"]
        st = state.get(rule, {"firing": False, "pending": None, "clearing": None})
        change = None
        if not st["firing"]:
            if not fire:
                st["pending"] = None
            else:
                st["pending"] = minute if st["pending"] is None else st["pending"]
                if minute - st["pending"] + 1 >= cfg["fire_after_min"]:
                    st.update(firing=True, start=st["pending"] * MINUTE, pending=None)
                    change = "firing"
        elif not clear:
            st["clearing"] = None
        else:
            st["clearing"] = minute if st["clearing"] is None else st["clearing"]
            if minute - st["clearing"] + 1 >= cfg["clear_after_min"]:
                st.update(firing=False, clearing=None)
                change = "resolved"
        state.set(rule, st)
        if change is None:
            return None
        patient = key.decode() if isinstance(key, bytes) else str(key)
        if change == "firing":
            fired.add((patient, rule))
        return {"patient_id": patient, "rule": rule, "severity": cfg["severity"],
                "status": change, "start": st.get("start"), "detected_at": window["end"],
                "value": round(level, 2) if level is not None else None}

    return step


def valid(r: dict[str, Any]) -> bool:
    return not ARTEFACTS.intersection(r.get("flags") or ())


def main() -> None:
    p = json.loads(sys.argv[1])
    app = Application(
        broker_address=p["bootstrap"], consumer_group=p["group"], auto_offset_reset="earliest",
        state_dir=p["state_dir"], loglevel="WARNING",
        # group joins on tansu take ~max(5 s, session timeout / 2): 45 s by default
        consumer_extra_config={"session.timeout.ms": 10_000})
    readings = app.topic(p["topic"], value_deserializer="json",
                         timestamp_extractor=lambda v, _h, _ts, _type: v["ts"])
    alerts = app.topic(p["alerts_topic"], value_serializer="json")
    progress = Progress(app, p["expect"])
    fired: set[tuple[str, str]] = set()
    grace = int(p["lateness_s"] * 1000)
    site = p["site_correction_c"]

    sdf = app.dataframe(readings).update(progress.count)

    temp = sdf.filter(lambda r: r["kind"] == "temperature" and r.get("temp") is not None
                      and r["temp"] >= p["sensor_off_below_c"] and valid(r))
    temp = temp.apply(lambda r: [r["ts"] // MINUTE,
                                 r["temp"] + site.get(r.get("site") or "axillary", 0.0)])
    fever = p["fever"]
    temp = (temp.hopping_window(int(fever["window_min"] * MINUTE), MINUTE, grace, name="fever")
            .collect().final())
    temp = temp.apply(judge("fever", fever, fired), stateful=True, metadata=True)
    temp.filter(lambda a: a is not None).to_topic(alerts)

    hr = sdf.filter(lambda r: r["kind"] == "oximetry" and r.get("hr") is not None and valid(r))
    hr = hr.apply(lambda r: [r["ts"] // MINUTE, r["hr"]])
    tachy = p["tachycardia"]
    hr = (hr.hopping_window(int(tachy["window_min"] * MINUTE), MINUTE, grace, name="tachycardia")
          .collect().final())
    hr = hr.apply(judge("tachycardia", tachy, fired), stateful=True, metadata=True)
    hr.filter(lambda a: a is not None).to_topic(alerts)

    started = time.time()
    app.run()
    print(json.dumps({"readings": progress.n, "started": started, "first": progress.first,
                      "last": progress.last, "fired": sorted(fired)}), flush=True)


if __name__ == "__main__":
    main()
