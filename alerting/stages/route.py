"""Stage `route`: the patient's on-call team and its escalation policy. A patient missing from
VITALS_PATIENTS, or whose team has no escalation, cannot be routed: recorded, audited and
logged as an error (`no_team`), not paged. Who in the team is paged is settled at page time
(`notify`: a schedule's person on duty)."""

from __future__ import annotations

import dataclasses
import logging

from alerting.oncall import OnCall
from alerting.stages.pipeline import Decision, Flow, go_on, stop
from alerting.stages.records import Audit, RecordAlert
from alerting.store import Lookups
from vitals.patients import PatientRegistry

log = logging.getLogger(__name__)


class Route:
    """Finds the patient's team; stops an event that has none."""

    name = "route"

    def __init__(self, oncall: OnCall, patients: PatientRegistry) -> None:
        self.oncall = oncall
        self.patients = patients

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """Go on with the team and its policy, or stop with `no_team`."""
        event = flow.event
        patient = self.patients.get(event.patient_id)
        if patient is None or patient.team not in self.oncall.teams:
            log.error("alert %s: patient %s has no on-call team; recorded, not paged",
                      event.alert_id, event.patient_id)
            return stop("no_team", RecordAlert(event, "no_team"),
                        Audit("not_paged", patient_id=event.patient_id, alert_id=event.alert_id,
                              status="error",
                              detail="patient not enrolled or team without escalation"))
        return go_on(dataclasses.replace(flow, team=patient.team,
                                         policy=self.oncall.policy(patient.team)))
