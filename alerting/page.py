"""The on-call nurse's page: a shell (public, no patient data) that asks once for the nurse's
token, then loads the open alerts as an HTML fragment every 10 s with that token. Each alert
shows the patient's recent temperature, heart rate and SpO2 as small inline SVG charts, and an
Acknowledge button that POSTs /alerts/{incident}/ack."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

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


def fragment(alerts: list[dict[str, Any]], trends: dict[str, list[dict[str, Any]]]) -> str:
    if not alerts:
        return "<p id='none'>No open alerts.</p>"
    parts = []
    for a in alerts:  # already worst first, then newest
        ref = a["incident_id"] or a["alert_id"]
        paged = a["incident_id"] is not None
        state = a["state"] + (f" by {a['acked_by']}" if a["acked_by"] else "")
        day = a.get("day_since_infusion")
        buttons = ""
        if paged and a["state"] == "paged":
            buttons += (f"<button class='ack' data-action='ack' data-id='{escape(ref)}'>"
                        "Acknowledge</button> ")
        if a["state"] not in ("resolved",):
            buttons += (f"<button class='resolve' data-action='resolve' "
                        f"data-id='{escape(ref)}'>Resolve</button>")
        step = f" · escalation step {a['escalation_step']}" if paged else ""
        errors = "".join(f"<p class='note'>Not delivered: {escape(e['channel'])} to "
                         f"{escape(e['target'])}: {e['response_status']} "
                         f"{escape(str(e['response_body'])[:200])}</p>"
                         for e in a["delivery_errors"])
        parts.append(
            f"<div class='alert {escape(a['severity'])}' data-alert='{escape(a['alert_id'])}' "
            f"data-incident='{escape(a['incident_id'] or '')}'>"
            f"<div><b>{escape(a['patient_id'])}</b> · {escape(a['rule'])} · "
            f"{escape(a['severity'])} · <span class='state'>{escape(state)}</span></div>"
            f"<div>{escape(a['summary'])}</div>"
            f"<div class='note'>since {_hm(a['start'])}"
            f"{f' · day {day:.1f} after infusion' if day is not None else ''}"
            f"{step}"
            f" · {escape(a['source'])}</div>"
            f"<div class='charts'>{charts(trends.get(a['patient_id'], []))}</div>"
            f"{errors}<div>{buttons}</div></div>")
    return "\n".join(parts)


def charts(points: list[dict[str, Any]]) -> str:
    return "".join(sparkline(points, key, label, line) for key, label, line in CHARTS)


def sparkline(points: list[dict[str, Any]], key: str, label: str, threshold: float,
              w: int = 220, h: int = 60) -> str:
    pts = [(p["ts"], p[key]) for p in points if p.get(key) is not None]
    title = f"<title>{escape(label)}</title>"
    if len(pts) < 2:
        return (f"<svg width='{w}' height='{h}' role='img' aria-label='{escape(label)}'>{title}"
                f"<text x='4' y='14' font-size='11'>{escape(label)}: no data</text></svg>")
    t0, t1 = pts[0][0], pts[-1][0]
    lo = min(min(v for _, v in pts), threshold)
    hi = max(max(v for _, v in pts), threshold)
    span_v, span_t = (hi - lo) or 1.0, (t1 - t0) or 1

    def xy(t: float, v: float) -> str:
        return f"{(t - t0) / span_t * (w - 8) + 4:.1f},{h - 4 - (v - lo) / span_v * (h - 22):.1f}"

    line_y = h - 4 - (threshold - lo) / span_v * (h - 22)
    path = " ".join(xy(t, v) for t, v in pts)
    return (f"<svg width='{w}' height='{h}' role='img' aria-label='{escape(label)}' "
            f"data-points='{len(pts)}'>{title}"
            f"<text x='4' y='12' font-size='11'>{escape(label)}: {pts[-1][1]:.1f}</text>"
            f"<line x1='4' x2='{w - 4}' y1='{line_y:.1f}' y2='{line_y:.1f}' stroke='#c62828' "
            f"stroke-dasharray='3,3'/>"
            f"<polyline fill='none' stroke='#1565c0' stroke-width='1.5' points='{path}'/></svg>")


def _hm(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%d %b %H:%M UTC")
