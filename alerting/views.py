"""What the API and the nurse page show: the open alerts (worst first, then newest) and one
incident, as JSON-able dicts. They read the store, so they run on the store thread."""

from __future__ import annotations

from typing import Any

from alerting.lifecycle import Incident, worst_first
from alerting.store import Store


def open_alerts(store: Store, public_url: str) -> list[dict[str, Any]]:
    """Every open alert with its incident's state, step, who acked, and delivery errors."""
    incidents: dict[str, Incident | None] = {}
    shown = []
    for row in store.open_alerts():
        incident_id = row["incident_id"]
        if incident_id and incident_id not in incidents:
            incidents[incident_id] = store.incident(incident_id)
        incident = incidents.get(incident_id) if incident_id else None
        event = row["event"]
        shown.append({
            "alert_id": row["alert_id"], "patient_id": row["patient_id"], "rule": row["rule"],
            "severity": row["severity"], "status": row["status"],
            "state": incident.state if incident else row["disposition"],
            "summary": event.get("summary", ""), "source": event.get("source", ""),
            "start": event["start"], "detected_at": event["detected_at"],
            "day_since_infusion": event.get("day_since_infusion"),
            "evidence": event.get("evidence", {}), "incident_id": incident_id,
            "escalation_step": incident.step + 1 if incident else None,
            "acked_by": incident.acked_by if incident else None,
            "ack_url": f"{public_url}/alerts/{incident_id or row['alert_id']}",
            "delivery_errors": store.delivery_errors(incident_id) if incident_id else [],
        })
    shown.sort(key=worst_first)
    return shown


def incident_json(store: Store, incident_id: str) -> dict[str, Any]:
    """One incident: state, severity, step, who acked and resolved, its alerts, errors."""
    incident = store.incident(incident_id)
    assert incident is not None
    return {"incident_id": incident.id, "patient_id": incident.patient_id,
            "state": incident.state, "severity": incident.severity,
            "escalation_step": incident.step + 1, "acked_by": incident.acked_by,
            "resolved_by": incident.resolved_by,
            "alerts": [row["alert_id"] for row in store.alerts_of(incident.id)],
            "delivery_errors": store.delivery_errors(incident.id)}
