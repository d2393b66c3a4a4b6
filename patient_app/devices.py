"""What the page says about each of the patient's devices: when it last sent a reading, its
battery, whether it went offline. Fed from the broker (every device topic), judged by ingest's
own parser (so a reading ingest would refuse does not count as a sign of life), and kept in
memory only: after a restart the page knows what it has heard since. No vital-sign value is
kept: the page shows none."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ingest.parse import TOPIC, Parser
from patient_app.submissions import DEVICE_ID as APP_DEVICE
from vitals.patients import PatientRegistry

# a reading's kind -> what the device is called on the page
DEVICE_TYPES = {"temperature": "thermometer", "oximetry": "oximeter"}
MAX_DEVICES = 16  # per patient: a patient's devices are a handful; memory stays bounded


@dataclass
class DeviceState:
    device_id: str
    kind: str | None = None  # of its newest reading
    last_reading: int | None = None  # epoch ms of its newest reading (never ahead of receipt)
    battery: float | None = None
    state: str | None = None  # "online" / "offline", from its status topic
    state_at: int | None = None  # when the broker delivered that status
    heard_at: int = 0  # for evicting the longest-silent device when over MAX_DEVICES

    def view(self) -> dict[str, object]:
        """The JSON the page renders in words."""
        return {"device": self.device_id,
                "type": DEVICE_TYPES.get(self.kind or "", "device"),
                "last_reading": self.last_reading,
                "battery": None if self.battery is None else round(self.battery),
                "state": self.state, "state_at": self.state_at}


class DeviceBoard:
    """Per patient and device, the newest reading's time, battery, kind and status. `feed` is
    called on the MQTT network thread, `views` on the web server's: one lock between them."""

    def __init__(self, registry: PatientRegistry) -> None:
        self._registry = registry
        self._parser = Parser(registry)
        self._lock = threading.Lock()
        self._devices: dict[str, dict[str, DeviceState]] = {}

    def feed(self, topic: str, payload: bytes, received_at: int) -> None:
        m = TOPIC.fullmatch(topic)
        if m is None or m.group(2) == APP_DEVICE:  # the app itself is this page
            return
        outcome = self._parser.parse(topic, payload, received_at)
        with self._lock:
            for r in outcome.readings:
                d = self._device(r.patient_id, r.device_id, received_at)
                ts = min(r.ts, received_at)
                if d.last_reading is None or ts >= d.last_reading:
                    d.last_reading, d.kind = ts, r.kind
                    if r.battery is not None:
                        d.battery = r.battery
            s = outcome.status
            if s is not None:
                d = self._device(s.patient_id, s.device_id, received_at)
                d.state, d.state_at = s.state, received_at
                if s.battery is not None:
                    d.battery = s.battery

    def _device(self, patient_id: str, device_id: str, now: int) -> DeviceState:
        devices = self._devices.setdefault(patient_id, {})
        d = devices.get(device_id)
        if d is None:
            if len(devices) >= MAX_DEVICES:
                del devices[min(devices.values(), key=lambda x: x.heard_at).device_id]
            d = devices[device_id] = DeviceState(device_id)
        d.heard_at = now
        return d

    def views(self, patient_id: str) -> list[dict[str, object]]:
        """This patient's devices only: those heard of, and those the patients file lists."""
        patient = self._registry.get(patient_id)
        with self._lock:
            seen = {k: v.view() for k, v in self._devices.get(patient_id, {}).items()}
        for device_id in (patient.devices or ()) if patient else ():
            if device_id != APP_DEVICE and device_id not in seen:
                seen[device_id] = DeviceState(device_id).view()
        return [seen[k] for k in sorted(seen)]
