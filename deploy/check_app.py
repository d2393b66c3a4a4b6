"""The checks of deploy/compose.yaml about the patients' page, `vitals app` (part of
check_compose.py; its broker account is checked with the other MQTT clients in
check_brokers.py, its /healthz with the other services' healthchecks): a personal link is a
credential, so the links start with https://, the page is published on the host's loopback only
(for the TLS reverse proxy), and the secret that signs them comes from a required variable of
deploy/.env, never written into compose.yaml; and the page gets the patients and the on-call
file (the teams' phones)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from compose_model import APP_SERVICE, Compose

LOOPBACK = ("127.0.0.1", "[::1]", "localhost")


def patient_app(compose: Compose) -> Iterator[str]:
    service = compose.services.get(APP_SERVICE)
    if service is None:
        return
    env = compose.environment(APP_SERVICE)
    base_url = env.get("VITALS_APP_BASE_URL", "")
    if not base_url.startswith("https://"):
        yield (f"{APP_SERVICE}: VITALS_APP_BASE_URL must be https://... (got "
               f"{base_url or 'none'}): a personal link is a credential and must never "
               "travel in clear text")
    raw_env = (compose.raw["services"].get(APP_SERVICE) or {}).get("environment") or {}
    if isinstance(raw_env, list):
        raw_env = dict(item.partition("=")[::2] for item in raw_env)
    if not re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}", str(raw_env.get("VITALS_APP_SECRET",
                                                                           ""))):
        yield (f"{APP_SERVICE}: VITALS_APP_SECRET must come from a required variable of "
               "deploy/.env (${VITALS_APP_SECRET:?...}), never written in compose.yaml")
    for spec in service.get("ports", []):
        host = _published_host(spec)
        if host not in LOOPBACK:
            yield (f"{APP_SERVICE}: published on {host or 'every address'}; publish it on "
                   "127.0.0.1 only and let patients in through the TLS reverse proxy")
    for variable, why in (("VITALS_PATIENTS", "the enrolled patients"),
                          ("VITALS_ONCALL", "the teams' phone numbers")):
        if not env.get(variable):
            yield f"{APP_SERVICE}: {variable} is not set: the page needs {why}"


def _published_host(spec: object) -> str:
    """The host address a `ports:` entry binds ("" for every address)."""
    if isinstance(spec, dict):
        return str(spec.get("host_ip", ""))
    parts = str(spec).split("/")[0].rsplit(":", 2)
    return parts[0] if len(parts) == 3 else ""
