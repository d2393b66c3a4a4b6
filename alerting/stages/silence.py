"""Stage `silence`: an alert a silence covers (patient, rule, or both) is recorded and shown,
and never pages, even after the silence ends."""

from __future__ import annotations

from alerting.stages.pipeline import Decision, Flow, go_on, stop
from alerting.stages.records import Audit, RecordAlert
from alerting.store import Lookups


class Silence:
    """Stops an event that an active silence covers."""

    name = "silence"

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """Stop with `silenced` when a silence matches; otherwise go on."""
        event = flow.event
        silence = lookups.matching_silence(event.patient_id, event.rule, flow.now)
        if silence is None:
            return go_on(flow)
        return stop("silenced", RecordAlert(event, "silenced"),
                    Audit("not_paged", patient_id=event.patient_id, alert_id=event.alert_id,
                          detail=f"silenced by silence {silence['id']}: {silence['reason']}"))
