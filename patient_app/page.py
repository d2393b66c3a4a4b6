"""The personal page's HTML. Every value shown is escaped here (html.escape, quotes too),
whatever its source: the token in the URL, the patients file, the on-call file. The page holds
no script of its own: app.js (a static file, as the Content-Security-Policy demands) fills in
the devices and sends what is entered; it writes data with textContent only."""

from __future__ import annotations

from html import escape

from patient_app.phones import tel_uri, valid_phone
from patient_app.texts import CALL_NOW, CALL_NOW_CODES, ICE_MAX, ICE_PARTS, SITES, SYMPTOMS
from vitals.records import MAX_NOTE_CHARS

TITLE = "Your care at home"


def e(value: object) -> str:
    return escape(str(value), quote=True)


def render(base: str, patient_id: str, phone: str | None) -> str:
    """The page of the patient whose link path is `base` (`/p/{token}`)."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{e(TITLE)}</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body data-base="{e(base)}">
<header>
<h1>{e(TITLE)}</h1>
<p>Study number <strong>{e(patient_id)}</strong>. Keep this link to yourself.</p>
<noscript><p class="error">This page needs JavaScript switched on.</p></noscript>
</header>
<main>
{_call_now(phone)}
<section aria-labelledby="devices-h">
<h2 id="devices-h">Your devices</h2>
<ul id="devices" class="plain"><li>Looking for your devices…</li></ul>
<p id="devices-updated" class="small"></p>
</section>
{_symptoms()}
{_neuro_check()}
{_temperature()}
<section aria-labelledby="outbox-h">
<h2 id="outbox-h">What you sent</h2>
<ul id="outbox" class="plain"><li>Nothing yet.</li></ul>
</section>
<div id="status" class="status" role="status" aria-live="polite"></div>
</main>
</body>
</html>
"""


def _call_now(phone: str | None) -> str:
    signs = "\n".join(f"<li>{e(sign)}</li>" for sign in CALL_NOW)
    if phone is not None and valid_phone(phone):
        call = (f'<p class="call">Call your team now on <a class="tel" href="{e(tel_uri(phone))}">'
                f"{e(phone)}</a></p>")
    else:  # no number in the on-call file (or an unusable one): never a made-up one
        call = '<p class="call">Call your team now on the number they gave you.</p>'
    return f"""<section class="urgent" aria-labelledby="call-h">
<h2 id="call-h">Call now if you have</h2>
<ul>
{signs}
</ul>
{call}
<p>In an emergency call <a class="tel" href="tel:999">999</a> or
<a class="tel" href="tel:112">112</a>.</p>
<p>This page does not replace a call: sending a check-in does not reach anyone at once.</p>
</section>"""


def _check(name: str, value: str, label: str, extra: str = "") -> str:
    ident = f"{name}-{value}"
    return (f'<div class="choice"><input type="checkbox" id="{e(ident)}" name="{e(name)}" '
            f'value="{e(value)}"{extra}><label for="{e(ident)}">{e(label)}</label></div>')


def _radio(name: str, value: str, label: str, checked: bool = False) -> str:
    ident = f"{name}-{value}"
    return (f'<div class="choice"><input type="radio" id="{e(ident)}" name="{e(name)}" '
            f'value="{e(value)}"{" checked" if checked else ""}>'
            f'<label for="{e(ident)}">{e(label)}</label></div>')


def _symptoms() -> str:
    boxes = "\n".join(
        _check("symptom", code, label, ' data-call-now="1"' if code in CALL_NOW_CODES else "")
        for code, label in SYMPTOMS.items())
    return f"""<section aria-labelledby="symptoms-h">
<h2 id="symptoms-h">How are you feeling?</h2>
<form id="symptoms-form" novalidate>
<fieldset>
<legend>Who is filling this in?</legend>
{_radio("by", "patient", "The patient", checked=True)}
{_radio("by", "caregiver", "A caregiver")}
</fieldset>
<button type="button" id="nothing-new" class="big">Nothing new: I feel the same</button>
<fieldset>
<legend>Or tick everything you have now</legend>
{boxes}
</fieldset>
<label for="note">Anything to add (optional, up to {MAX_NOTE_CHARS} characters)</label>
<textarea id="note" name="note" rows="3" maxlength="{MAX_NOTE_CHARS}"
aria-describedby="note-help"></textarea>
<p id="note-help" class="small">Needed if you ticked "Something else".</p>
<button type="submit" class="big">Send check-in</button>
<p id="symptoms-result" class="result"></p>
</form>
<p id="call-prompt" class="error" role="alert"></p>
</section>"""


def _neuro_check() -> str:
    parts = []
    for part, (title, ask, points) in ICE_PARTS.items():
        boxes = "\n".join(_check(part, str(i), point) for i, point in enumerate(points))
        parts.append(f"""<fieldset class="ice" data-part="{e(part)}">
<legend>{e(title)}: <span class="part-score" data-part-score="{e(part)}">0</span> of
{len(points)}</legend>
<p>{e(ask)}</p>
{boxes}
</fieldset>""")
    joined = "\n".join(parts)
    return f"""<section aria-labelledby="neuro-h">
<h2 id="neuro-h">Daily thinking check (for the caregiver)</h2>
<p>Do this once a day, with the patient, at about the same time.
If they find it harder than last time, or you are worried, call the team now.</p>
<form id="neuro-form" novalidate>
{joined}
<p class="total" aria-live="polite">Score so far: <span id="ice-total">0</span> of
{ICE_MAX}</p>
<button type="submit" class="big">Send thinking check</button>
<p id="neuro-result" class="result"></p>
</form>
</section>"""


def _temperature() -> str:
    sites = "\n".join(_radio("site", site, label, checked=site == "oral")
                      for site, label in SITES.items())
    return f"""<section aria-labelledby="temp-h">
<h2 id="temp-h">Temperature taken by hand</h2>
<form id="temp-form" novalidate>
<label for="temp">Temperature in °C (for example 37.2)</label>
<input id="temp" name="temp" type="text" inputmode="decimal" autocomplete="off"
aria-describedby="temp-help">
<p id="temp-help" class="small">Use the thermometer your team gave you.</p>
<fieldset>
<legend>Where did you take it?</legend>
{sites}
</fieldset>
<button type="submit" class="big">Send temperature</button>
<p id="temp-result" class="result"></p>
</form>
</section>"""
