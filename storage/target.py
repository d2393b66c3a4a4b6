"""Where the store's points go: a small interface (one request: write these lines, or say why
not), and InfluxDB 2 behind it through influxdb-client's synchronous write API.

The interface only sorts failures into two kinds, which is all the retry logic needs:
`Refused` (this data will never be accepted: find the bad points, dead-letter them) and
`Unavailable` (nothing wrong with the data: wait and try again).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from vitals.settings import redact

# Statuses that say the data itself is bad: 400 malformed line protocol, 413 request too large
# (a smaller batch may pass), 422 unprocessable (a field type conflict, a point outside the
# bucket's retention). Other 4xx (401/403 token, 404 org or bucket) say the store is
# misconfigured: dead-lettering every point for that would empty the stream into
# vitals.rejected, so the store waits for an operator instead, as it does for 429 and 5xx.
DATA_REFUSED = frozenset({400, 413, 422})


class Refused(Exception):
    """The server refused the request because of its content (HTTP 400/413/422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Unavailable(Exception):
    """The server cannot take the write now (down, slow, 429, 5xx, or refusing our access)."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class WriteTarget(ABC):
    """Takes a batch of line protocol with millisecond timestamps; returns only once the server
    has confirmed it, or raises `Refused` or `Unavailable`."""

    name: str

    @abstractmethod
    def write(self, body: bytes) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


class InfluxTarget(WriteTarget):
    """InfluxDB 2 (or anything speaking `/api/v2/write`, such as VictoriaMetrics)."""

    def __init__(self, url: str, token: str, org: str, bucket: str,
                 timeout_s: float = 30.0) -> None:
        self.name = f"InfluxDB at {redact(url)} (bucket {bucket})"
        self.org = org
        self.bucket = bucket
        # No retries inside the client (its default for requests outside batching mode): the
        # store retries itself, so that it knows when a point is written and can commit.
        self._client = InfluxDBClient(url=url, token=token, org=org,
                                      timeout=int(timeout_s * 1000))
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, body: bytes) -> None:
        try:
            self._api.write(self.bucket, self.org, body, write_precision=WritePrecision.MS)
        except ApiException as exc:
            status = exc.status or 0
            message = error_message(exc)
            if status in DATA_REFUSED:
                raise Refused(status, message) from None
            retry_after = _seconds(exc.retry_after)
            raise Unavailable(f"HTTP {status}: {message}", retry_after) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(_connection_reason(exc)) from None

    def close(self) -> None:
        self._client.close()


def error_message(exc: ApiException) -> str:
    """The server's message on one line (InfluxDB's JSON `message`, or the body as text)."""
    msg = exc.message
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(str(msg or exc.reason or "no message").split())[:500]


def _seconds(value: object) -> float | None:
    try:
        return float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None  # an HTTP date; the backoff decides


def _connection_reason(exc: BaseException) -> str:
    """The innermost cause, which says what happened (refused, timed out, reset)."""
    reason: BaseException = exc
    while getattr(reason, "reason", None) is not None and isinstance(reason.reason,  # type: ignore[attr-defined]
                                                                    BaseException):
        reason = reason.reason  # type: ignore[attr-defined]
    text = str(reason)
    if "Errno 111" in text or "Connection refused" in text:
        return "connection refused"
    return f"{type(reason).__name__}: {text}"[:300]
