"""What the alerting tests share: the official PagerDuty schema, a fake clock, the on-call file
of the tests, their settings, and alert events. The HTTP receiver (PagerDuty, webhook targets)
is the harness's stand-in, `harness.pagerduty.PagerDutyStandIn`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from alerting import service
from alerting.core import Alerting
from alerting.dispatch import Dispatcher
from harness.pagerduty import PagerDutyStandIn
from harness.servers import free_port
from tests.support import write_patients
from vitals.records import AlertEvent
from vitals.settings import Settings, load_settings

# The official PagerDuty Events API v2 schema (CONTRACT section 4). A copy lives with the tests so
# they run wherever the repository is cloned; test_notify checks it still equals the contract's.
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "pagerduty-events-v2.openapi.json"
CONTRACT_SCHEMA = (Path(__file__).resolve().parents[2].parent / "shared" / "reference"
                   / "pagerduty-events-v2.openapi.json")
T0 = 1_795_000_000.0  # Sat 2026-11-18 ... in seconds; any fixed instant will do


def pagerduty_validator() -> jsonschema.Validator:
    """The request body schema of POST /enqueue in the official OpenAPI file, with the
    file's components so that its $refs resolve."""
    spec = json.loads(SCHEMA_FILE.read_text())
    body = spec["paths"]["/enqueue"]["post"]["requestBody"]["content"]["application/json"]
    schema = {**body["schema"], "components": spec["components"]}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, minutes: float) -> None:
        self.t += minutes * 60


ONCALL = """
targets:
  nurse-alice: {pagerduty: key-alice}
  nurse-bob: {pagerduty: key-bob}
  registrar: {pagerduty: key-registrar, webhook: "%(hook)s/registrar"}
  charge: {email: charge@example.org}
schedules:
  ward-nurse:
    timezone: Europe/London
    start: 2026-11-02T08:00
    rotation: [nurse-alice, nurse-bob]
teams:
  haem-a:
    escalation:
      - {after_min: 0, notify: [ward-nurse]}
      - {after_min: %(step2)s, notify: [registrar]}
      - {after_min: %(step3)s, notify: [charge]}
tokens:
  alice: {token: token-alice-0123456789, role: lead}   # may also silence
  bob: "sha256:%(bob_hash)s"                           # a bare string: a nurse
paging:
  severities: [critical, error]
  repeat_min: 15
  resolve_hold_min: %(hold)s
  silence_max_days: %(silence_days)s
  self_alert_resolve_after_min: 0.02
"""
BOB_TOKEN = "token-bob-0123456789ab"


def write_oncall(path: Path, hook: str, step2: float = 10, step3: float = 20,
                 hold: float = 0, silence_days: float = 7) -> Path:
    import hashlib

    path.write_text(ONCALL % {"hook": hook, "step2": step2, "step3": step3, "hold": hold,
                              "silence_days": silence_days,
                              "bob_hash": hashlib.sha256(BOB_TOKEN.encode()).hexdigest()})
    return path


def make_settings(tmp_path: Path, receiver: PagerDutyStandIn, **kw: Any) -> Settings:
    oncall_kw = {k: kw.pop(k) for k in ("step2", "step3", "hold", "silence_days")
                 if k in kw}
    # These tests are about patients' pages and run no canary: its watch would page the
    # operators as soon as their clocks jump past 3 minutes. The watch is tested on its own
    # (test_watch.py, test_canary_service.py).
    kw.setdefault("canary_late_s", 86400)
    return load_settings(
        _env_file=None,
        patients=write_patients(tmp_path / "patients.yaml", ["P001", "P002", "P003"]),
        oncall=write_oncall(tmp_path / "oncall.yaml", receiver.base_url, **oncall_kw),
        pagerduty_url=f"{receiver.base_url}/v2/enqueue",
        state_dir=tmp_path / "state",
        alerting_addr=f"127.0.0.1:{free_port()}",
        **kw)


def build(settings: Settings, clock: Clock) -> tuple[Alerting, Dispatcher]:
    core, dispatcher = service.build(settings, clock)
    dispatcher.backoff_s = 0.01  # retries in tests: fast, but still real waits
    return core, dispatcher


def event(patient: str = "P001", rule: str = "fever", severity: str = "error",
          status: str = "firing", start: int = 1_795_000_000_000, **kw: Any) -> AlertEvent:
    return AlertEvent(
        alert_id=f"{patient}/{rule}/{start}", status=status, rule=rule,  # type: ignore[arg-type]
        severity=severity, patient_id=patient, start=start,  # type: ignore[arg-type]
        detected_at=start + 600_000,
        summary=kw.pop("summary", f"{patient}: {rule}: temperature 38.4 °C, median over 20 "
                                  "min, >= 38 °C, since 18 Nov 09:20 UTC; day 1 after infusion."),
        source=kw.pop("source", "ASTCT consensus (Lee 2019): fever >= 38.0 C"),
        day_since_infusion=1.4,
        evidence=kw.pop("evidence", {"value": 38.4, "window_min": 20, "trend": "+0.4 C/h"}),
        **kw)
