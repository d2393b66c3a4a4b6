"""Personal links: `/p/{patient_id}.{mac}`, where `mac` is the first 32 characters of
base64url(HMAC-SHA256(VITALS_APP_SECRET, patient_id)). Nothing is stored: the server checks a
link by computing its MAC again, so changing the secret revokes every link at once."""

from __future__ import annotations

import base64
import hashlib
import hmac

from vitals.patients import PatientRegistry

MAC_CHARS = 32  # 192 bits: not guessable, short enough for a QR code a phone reads at once
MAX_TOKEN_CHARS = 64 + 1 + MAC_CHARS


def mac(secret: str, patient_id: str) -> str:
    digest = hmac.new(secret.encode(), patient_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:MAC_CHARS]


def make_token(secret: str, patient_id: str) -> str:
    """The token of a patient's personal link."""
    return f"{patient_id}.{mac(secret, patient_id)}"


def verify_token(secret: str, token: str, registry: PatientRegistry) -> str | None:
    """The enrolled patient a token belongs to, or None (bad, forged, or not enrolled any
    more). The MAC is compared in constant time; ids carry no dot, so the last one splits."""
    if len(token) > MAX_TOKEN_CHARS:
        return None
    patient_id, dot, given = token.rpartition(".")
    if not dot or registry.get(patient_id) is None:
        return None
    want = mac(secret, patient_id).encode()
    if not hmac.compare_digest(want, given.encode("utf-8", "surrogatepass")):
        return None
    return patient_id


def link(base_url: str, secret: str, patient_id: str) -> str:
    """The personal link a patient opens (base_url without a trailing slash)."""
    return f"{base_url}/p/{make_token(secret, patient_id)}"
