"""Every test that talks to the PagerDuty stand-in also checks, at teardown, that each request
it received validates against the official Events API v2 schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import pagerduty_validator

VALIDATOR = pagerduty_validator()


@pytest.fixture
def receiver() -> Iterator[PagerDutyStandIn]:
    r = PagerDutyStandIn(strict=False).start()
    yield r
    r.stop()
    for body in r.pd():
        VALIDATOR.validate(body)
        if body["event_action"] == "trigger":
            assert len(body["payload"]["summary"]) <= 1024
