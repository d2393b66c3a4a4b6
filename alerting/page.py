"""The on-call nurse's page: a shell (public, no patient data) that asks once for the nurse's
token, then loads the open alerts as an HTML fragment every 10 s with that token. Each alert
shows the patient's recent temperature, heart rate and SpO2 as small inline SVG charts, and an
Acknowledge button that POSTs /alerts/{incident}/ack."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from alerting import reports as entered

SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vitals: open alerts</title>
<style>
body{font-family:system-ui,sans-serif;margin:1rem;max-width:60rem}
.alert{border:1px solid #ccc;border-left:6px solid #888;border-radius:4px;padding:.6rem;
margin:.6rem 0}
.critical{border-left-color:#b00020}.error{border-left-color:#e65100}
.warning{border-left-color:#f9a825}.info{border-left-color:#1565c0}
.state{font-weight:bold}.charts svg{margin-right:.5rem;background:#fafafa}
button{font-size:1.1rem;padding:.4rem 1rem}#login{display:none}
.note{color:#555;font-size:.9rem}
.banner{background:#b00020;color:#fff;font-weight:bold;font-size:1.1rem;padding:.6rem;
border-radius:4px}
</style></head><body>
<h1>Open alerts</h1>
<form id="login"><label>Your token <input id="token" type="password" autocomplete="off">
</label> <button type="submit">Sign in</button></form>
<div id="status" class="note"></div>
<div id="alerts"></div>
<p class="note">What was measured at home: decision support, not a diagnosis or a CRS grade.</p>
<script>
const $ = (id) => document.getElementById(id);
function token() { return localStorage.getItem("vitals-token"); }
async function load() {
  if (!token()) { $("login").style.display = "block"; return; }
  const r = await fetch("/page/alerts", {headers: {Authorization: "Bearer " + token()}});
  if (r.status === 401) { localStorage.removeItem("vitals-token");
    $("login").style.display = "block"; $("status").textContent = "Token not accepted.";
    return; }
  $("login").style.display = "none";
  $("alerts").innerHTML = await r.text();
  // opened from a page's ack link (/alerts/{id}): mark that alert
  const m = location.pathname.match(new RegExp("^/alerts/(.+)$"));
  if (m) for (const el of document.querySelectorAll("div.alert")) {
    if ([el.dataset.alert, el.dataset.incident].includes(decodeURIComponent(m[1]))) {
      el.style.outline = "3px solid #1565c0"; el.scrollIntoView(); } }
  $("status").textContent = "Updated " + new Date().toLocaleTimeString();
}
$("login").addEventListener("submit", (e) => { e.preventDefault();
  localStorage.setItem("vitals-token", $("token").value); load(); });
document.addEventListener("click", async (e) => {
  const b = e.target.closest("button[data-action]"); if (!b) return;
  b.disabled = true;
  const r = await fetch("/alerts/" + encodeURIComponent(b.dataset.id) + "/" + b.dataset.action,
    {method: "POST", headers: {Authorization: "Bearer " + token()}});
  $("status").textContent = r.ok ? "Done." : "Failed: " + r.status + " " + await r.text();
  load();
});
load(); setInterval(load, 10000);
</script></body></html>
"""

CHARTS = (("temp", "Temperature °C", 38.0), ("hr", "Heart rate /min", 130.0),
          ("spo2", "SpO2 %", 93.0))


def fragment(alerts: list[dict[str, Any]], trends: dict[str, list[dict[str, Any]]],
             banner: str | None = None,
             reports: dict[str, list[dict[str, Any]]] | None = None,
             latest: list[dict[str, Any]] | None = None) -> str:
    """The open alerts (already worst first, then newest) as HTML cards with their charts and
    what the patient entered in the app; first, while the canary's round trips are late, the
    banner that says pages may be late; last, the newest reports of every patient (a headache
    alone pages nobody, but the nurse sees it here)."""
    head = f"<p id='banner' class='banner' role='alert'>{escape(banner)}</p>\n" if banner else ""
    tail = "\n" + newest_reports(latest) if latest is not None else ""
    if not alerts:
        return head + "<p id='none'>No open alerts.</p>" + tail
    reports = reports or {}
    return head + "\n".join(_card(alert, trends.get(alert["patient_id"], []),
                                   reports.get(alert["patient_id"], []))
                             for alert in alerts) + tail


def _card(alert: dict[str, Any], points: list[dict[str, Any]],
          said: list[dict[str, Any]] | None = None) -> str:
    """One alert: who, what, state, since when, charts, reports, delivery errors, buttons."""
    paged = alert["incident_id"] is not None
    state = alert["state"] + (f" by {alert['acked_by']}" if alert["acked_by"] else "")
    day = alert.get("day_since_infusion")
    step = f" · escalation step {alert['escalation_step']}" if paged else ""
    errors = "".join(f"<p class='note'>Not delivered"
                     f"{' yet, still trying' if error.get('status') == 'pending' else ''}: "
                     f"{escape(error['channel'])} to "
                     f"{escape(error['target'])}: {error['response_status']} "
                     f"{escape(str(error['response_body'])[:200])}</p>"
                     for error in alert["delivery_errors"])
    return (
        f"<div class='alert {escape(alert['severity'])}' "
        f"data-alert='{escape(alert['alert_id'])}' "
        f"data-incident='{escape(alert['incident_id'] or '')}'>"
        f"<div><b>{escape(alert['patient_id'])}</b> · {escape(alert['rule'])} · "
        f"{escape(alert['severity'])} · <span class='state'>{escape(state)}</span></div>"
        f"<div>{escape(alert['summary'])}</div>"
        f"<div class='note'>since {_hm(alert['start'])}"
        f"{f' · day {day:.1f} after infusion' if day is not None else ''}"
        f"{step}"
        f" · {escape(alert['source'])}</div>"
        f"<div class='charts'>{charts(points)}</div>"
        f"{reported(said or [])}{errors}<div>{_buttons(alert, paged)}</div></div>")


def _buttons(alert: dict[str, Any], paged: bool) -> str:
    """Acknowledge (a paged incident not yet acknowledged) and Resolve."""
    ref = escape(alert["incident_id"] or alert["alert_id"])
    buttons = ""
    if paged and alert["state"] == "paged":
        buttons += (f"<button class='ack' data-action='ack' data-id='{ref}'>"
                    "Acknowledge</button> ")
    if alert["state"] not in ("resolved",):
        buttons += (f"<button class='resolve' data-action='resolve' "
                    f"data-id='{ref}'>Resolve</button>")
    return buttons


def reported(said: list[dict[str, Any]], most: int = 12) -> str:
    """What the patient or a caregiver entered in the app, newest first, every field escaped
    (a note is free text from a patient's phone)."""
    if not said:
        return "<p class='reports note'>Nothing entered in the app in the last two days.</p>"
    items = "".join(f"<li>{escape(entered.when(report['ts']))} · "
                    f"{escape(entered.words(report))}</li>" for report in said[:most])
    more = f"<li>and {len(said) - most} earlier</li>" if len(said) > most else ""
    return (f"<div class='reports'><div>Entered in the app ({len(said)}):</div>"
            f"<ul>{items}{more}</ul></div>")


def newest_reports(latest: list[dict[str, Any]]) -> str:
    """Every patient's newest reports, newest first, each with its patient, escaped."""
    if not latest:
        return "<h2>Entered in the app</h2><p id='no-reports' class='note'>Nothing yet.</p>"
    items = "".join(f"<li><b>{escape(report['patient_id'])}</b> · "
                    f"{escape(entered.when(report['ts']))} · {escape(entered.words(report))}</li>"
                    for report in latest)
    return f"<h2>Entered in the app, newest first</h2><ul id='latest-reports'>{items}</ul>"


def charts(points: list[dict[str, Any]]) -> str:
    """Temperature, heart rate and SpO2 sparklines, each with its threshold line."""
    return "".join(sparkline(points, key, label, line) for key, label, line in CHARTS)


def sparkline(points: list[dict[str, Any]], key: str, label: str, threshold: float,
              width: int = 220, height: int = 60) -> str:
    """One measure over time as an inline SVG, its threshold dashed; "no data" below 2."""
    samples = [(point["ts"], point[key]) for point in points if point.get(key) is not None]
    title = f"<title>{escape(label)}</title>"
    if len(samples) < 2:
        return (f"<svg width='{width}' height='{height}' role='img' "
                f"aria-label='{escape(label)}'>{title}"
                f"<text x='4' y='14' font-size='11'>{escape(label)}: no data</text></svg>")
    first_ts, last_ts = samples[0][0], samples[-1][0]
    low = min(min(value for _, value in samples), threshold)
    high = max(max(value for _, value in samples), threshold)
    span_value, span_ts = (high - low) or 1.0, (last_ts - first_ts) or 1

    def y_of(value: float) -> float:
        return height - 4 - (value - low) / span_value * (height - 22)

    def xy(ts: float, value: float) -> str:
        return f"{(ts - first_ts) / span_ts * (width - 8) + 4:.1f},{y_of(value):.1f}"

    line_y = y_of(threshold)
    path = " ".join(xy(ts, value) for ts, value in samples)
    return (f"<svg width='{width}' height='{height}' role='img' aria-label='{escape(label)}' "
            f"data-points='{len(samples)}'>{title}"
            f"<text x='4' y='12' font-size='11'>{escape(label)}: {samples[-1][1]:.1f}</text>"
            f"<line x1='4' x2='{width - 4}' y1='{line_y:.1f}' y2='{line_y:.1f}' "
            f"stroke='#c62828' stroke-dasharray='3,3'/>"
            f"<polyline fill='none' stroke='#1565c0' stroke-width='1.5' points='{path}'/></svg>")


def _hm(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%d %b %H:%M UTC")
