"""The paho-mqtt client of a service that publishes like a device (the canary, the patients'
page): MQTT 3.1.1, a clean session, the account and TLS of its endpoint, paho's own reconnect
with backoff, and callbacks whose bugs cannot end the network thread. Ingest's subscriber is
MQTT 5 with a persistent session and is built in ingest/mqtt_source.py."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitals.settings import Endpoint


def device_client(endpoint: Endpoint, client_id: str, reconnect_min_s: float,
                  reconnect_max_s: float) -> mqtt.Client:
    """A client for `endpoint`; the caller sets its callbacks and starts its loop."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                    protocol=mqtt.MQTTv311)
    if endpoint.username:
        c.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        c.tls_set()  # the system's CAs; a private CA through SSL_CERT_FILE (deploy/)
    c.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
    c.suppress_exceptions = True  # a bug in a callback must not end the network thread
    return c
