"""Stage `escalate`: the incident's transition (alerting.lifecycle) for this event. A new
incident pages step 1 at once; a joining alert pages again only when worse; the last alert
clearing resolves the incident (after the hold). Steps that fall due with time are the clock's
(`Alerting.tick`), not an event's."""

from __future__ import annotations

import dataclasses

from alerting import lifecycle
from alerting.stages.pipeline import Decision, Flow, go_on
from alerting.store import Lookups


class Escalate:
    """Applies the lifecycle transition; passes on the incident and its effects."""

    name = "escalate"

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """Open, join or clear the incident; the outcome says which."""
        event, policy = flow.event, flow.policy
        assert policy is not None and flow.incident_id is not None
        incident = flow.incident
        if event.status == "resolved":
            assert incident is not None
            effects = lifecycle.all_cleared(incident, flow.now, policy)
            outcome = "cleared"
        elif incident is None:
            assert flow.team is not None
            incident, effects = lifecycle.open_incident(
                flow.incident_id, event.patient_id, flow.team, event.severity, flow.now, policy)
            outcome = "paged"
        else:
            effects = lifecycle.add_alert(incident, event.severity, flow.now, policy)
            outcome = "paged_again" if effects else "grouped"
        return go_on(dataclasses.replace(flow, incident=incident, effects=tuple(effects),
                                         outcome=outcome))
