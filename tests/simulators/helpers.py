"""Helpers for the simulator tests: build a simulation from YAML text, run it, read it back."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import yaml

from simulators import truth
from simulators.plan import Simulation
from simulators.scenario import ScenarioModel, build
from simulators.stream import Stream
from vitals.trafficfile import Message

START = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp() * 1000)
MIN, HOUR = 60_000, 3_600_000


def sim_of(text: str, start: int = START, seed: int | None = None) -> Simulation:
    return build(ScenarioModel.model_validate(yaml.safe_load(text)), start, seed)


@dataclass
class Run:
    sim: Simulation
    messages: list[Message]
    truth: truth.Truth

    def device(self, patient: str, device: str) -> list[tuple[Message, dict]]:
        """The device's reading messages (not status), decoded when they are JSON."""
        topic = f"vitals/v1/{patient}/{device}"
        out = []
        for m in self.messages:
            if m.topic == topic:
                try:
                    out.append((m, json.loads(m.payload)))
                except ValueError:
                    out.append((m, {}))
        return out

    def readings(self, patient: str, device: str) -> list[tuple[int, dict, bool]]:
        """(publish time, reading, in a batch) of every well-formed reading."""
        out = []
        for m, body in self.device(patient, device):
            for r in body.get("readings", [body] if body else []):
                out.append((m.at, r, "readings" in body))
        return out

    def artefacts(self, kind: str, patient: str | None = None) -> list[truth.Artefact]:
        return [a for a in self.truth.artefacts
                if a.kind == kind and (patient is None or a.patient == patient)]


def run(sim: Simulation, chunk: int = 10 * MIN) -> Run:
    s = Stream(sim, line=False, chunk=chunk)
    messages = list(s)
    return Run(sim, messages, truth.build(sim, s.injected))


def live_series(r: Run, patient: str, device: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    """(true time, value) of the device's live single readings with that field."""
    t, v = [], []
    for at, body, batched in r.readings(patient, device):
        if not batched and isinstance(body.get(field), int | float):
            t.append(at)
            v.append(body[field])
    return np.array(t, np.int64), np.array(v, float)


def by_device(messages: list[Message]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for m in messages:
        out[m.topic].append(m.payload)
    return out
