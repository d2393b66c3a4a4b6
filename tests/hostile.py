"""Hostile variants of a valid Kafka record, for the tests of every consumer: each field in turn
made huge, negative, non-finite, of the wrong type, missing, a 1 MB string or deeply nested,
and whole records that are not JSON at all. A consumer given these must account for each one
(dead-letter or audit it), commit past it, and go on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

HUGE_INTS = (2**64 - 1, 2**63, -(2**63), 10**30, -1)
ODD_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400")  # raw JSON tokens
WRONG_TYPES = ("x", [], {}, None, True)
# ~1 MB: the largest string a record can carry under the producers' default limit
# (librdkafka's message.max.bytes, 1,000,000 bytes for the whole record)
MEGABYTE = "x" * 990_000
DEEP = 5000  # levels of nesting


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def variants(valid: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """(what was done, the record's bytes) for each hostile variant of `valid`."""
    for field in valid:
        for value in (*HUGE_INTS, *WRONG_TYPES, MEGABYTE):
            label = value if not isinstance(value, str) or len(value) < 10 else "1 MB string"
            yield f"{field}={label!r}", json.dumps({**valid, field: value}).encode()
        for token in ODD_NUMBERS:
            body = json.dumps({**valid, field: "__token__"}).replace('"__token__"', token)
            yield f"{field}={token}", body.encode()
        body = json.dumps({**valid, field: "__deep__"}).replace('"__deep__"', nested(DEEP))
        yield f"{field} nested {DEEP} deep", body.encode()
        yield f"without {field}", json.dumps({k: v for k, v in valid.items()
                                              if k != field}).encode()
    body = json.dumps({**valid, "unknown": "__deep__"}).replace('"__deep__"', nested(DEEP))
    yield f"an unknown field nested {DEEP} deep", body.encode()  # skipped, yet still parsed
    yield "empty", b""
    yield "not JSON", b"{not json"
    yield "not UTF-8", b"\xff\xfe{}"
    yield "a JSON list", b"[]"
    yield f"nested {DEEP} deep", nested(DEEP).encode()
    yield "1 MB of JSON string", json.dumps(MEGABYTE).encode()
