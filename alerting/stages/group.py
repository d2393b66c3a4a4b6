"""Stage `group`: a patient's concurrent paging alerts form one incident (Alertmanager's group,
by patient). The first opens it, with id `{patient}-{now}`; later ones join it."""

from __future__ import annotations

import dataclasses

from alerting.stages.pipeline import Decision, Flow, go_on
from alerting.stages.records import RecordAlert
from alerting.store import Lookups


def new_incident_id(patient_id: str, now: int) -> str:
    """The id of an incident opened at `now`: PagerDuty's dedup_key for its whole life."""
    return f"{patient_id}-{now}"


class Group:
    """Puts the alert in the patient's open incident, or in a new one."""

    name = "group"

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """Go on with the incident found (or the id of the one to open); record the alert."""
        event = flow.event
        incident = lookups.open_incident_of(event.patient_id)
        incident_id = incident.id if incident else new_incident_id(event.patient_id, flow.now)
        return go_on(dataclasses.replace(flow, incident=incident, incident_id=incident_id),
                     RecordAlert(event, "paged", incident_id))
