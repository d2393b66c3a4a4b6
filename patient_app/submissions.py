"""What the page sends, turned into the app device's reading and judged by ingest's own
parser before anything is published: a submission ingest would reject is answered 400 with
ingest's reason (the browser then drops it instead of retrying it for ever) and never reaches
the broker. The browser gives each submission its `seq` and `ts` (CONTRACT sections 1 and 6):
a retry carries the same ones, so ingest and the rules drop a repeat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ingest.parse import Parser
from vitals.patients import PatientRegistry

DEVICE_ID = "app"  # the patient's app device: one per patient, on the patient's own topic
MAX_BODY_BYTES = 8 * 1024

# The page's seq is Date.now() or one more; beyond JavaScript's safe integers it is no seq the
# page made (and one that big would not fit the 64-bit integers downstream either).
MAX_SEQ = 2**53 - 1
_Seq = Annotated[int, Meta(ge=0, le=MAX_SEQ)]


# The shapes the page sends; an unknown field is refused. The values are left to ingest to
# judge (a symptom code, an ICE part's range, a temperature's plausibility), so that this
# gateway and ingest can never disagree.
class _Symptoms(msgspec.Struct, tag="symptoms", tag_field="kind", forbid_unknown_fields=True):
    seq: _Seq
    ts: int
    by: str
    symptoms: list[str]
    note: str | None = None


class _NeuroCheck(msgspec.Struct, tag="neuro_check", tag_field="kind",
                  forbid_unknown_fields=True):
    seq: _Seq
    ts: int
    by: str
    ice: dict[str, int]


class _Temperature(msgspec.Struct, tag="temperature", tag_field="kind",
                   forbid_unknown_fields=True):
    seq: _Seq
    ts: int
    temp: float
    site: str
    flags: list[Literal["manual"]] | None = None  # published as ["manual"] in any case
    unit: Literal["C", "F"] = "C"


_decode = msgspec.json.Decoder(_Symptoms | _NeuroCheck | _Temperature).decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Accepted:
    topic: str
    payload: bytes  # exactly what ingest's parser accepted, published as it is
    seq: int


class Refused(Exception):
    """Ingest would reject it: `reason` is ingest's stable code, the message its sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def topic_of(patient_id: str) -> str:
    return f"vitals/v1/{patient_id}/{DEVICE_ID}"


def reading(sub: _Symptoms | _NeuroCheck | _Temperature) -> dict[str, object]:
    """The app device's reading (CONTRACT sections 1 and 6) for one submission."""
    out: dict[str, object] = {"ts": sub.ts, "kind": type(sub).__struct_config__.tag,
                              "seq": sub.seq}
    if isinstance(sub, _Symptoms):
        out.update(by=sub.by, symptoms=sub.symptoms)
        if sub.note is not None and sub.note.strip():
            out["note"] = sub.note
    elif isinstance(sub, _NeuroCheck):
        out.update(by=sub.by, ice=sub.ice)
    else:
        # a person took it and typed it in (CONTRACT section 6)
        out.update(temp=sub.temp, unit=sub.unit, site=sub.site, flags=["manual"])
    return out


class Gatekeeper:
    """Judges submissions with ingest's parser and the same patients file ingest reads."""

    def __init__(self, registry: PatientRegistry) -> None:
        self._parser = Parser(registry)

    def check(self, patient_id: str, body: bytes, received_at: int) -> Accepted:
        """The reading to publish for this submission; `Refused` if ingest would refuse it."""
        if len(body) > MAX_BODY_BYTES:
            raise Refused("too_large", f"a submission is at most {MAX_BODY_BYTES} bytes")
        try:
            sub = _decode(body)
        except msgspec.ValidationError as exc:
            raise Refused("schema", f"submission does not follow the app's form: {exc}"
                          ) from None
        except (msgspec.DecodeError, RecursionError):
            raise Refused("bad_json", "submission is not JSON") from None
        except UnicodeDecodeError:  # msgspec checks UTF-8 only where a string is decoded
            raise Refused("bad_json", "submission is not UTF-8 JSON") from None
        if isinstance(sub, _Symptoms) and "other" in sub.symptoms and not (
                sub.note or "").strip():
            raise Refused("schema", "\"Something else\" needs a note saying what")
        topic, payload = topic_of(patient_id), _encode(reading(sub))
        outcome = self._parser.parse(topic, payload, received_at)
        if outcome.rejections:
            first = outcome.rejections[0]
            raise Refused(first.reason, first.detail)
        if len(outcome.readings) != 1:  # cannot happen for one reading; never publish blind
            raise Refused("schema", "submission is not one reading")
        return Accepted(topic, payload, sub.seq)
