"""The on-call file: validation in one line, schedules, tokens, the embedded default."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting.oncall import load_oncall
from tests.alerting.support import BOB_TOKEN, write_oncall
from vitals.patients import load_patients
from vitals.settings import ConfigError


def test_the_embedded_default_covers_the_demo_teams() -> None:
    teams = {p.team for p in load_patients(None)}
    oncall = load_oncall(None, teams)
    assert set(oncall.teams) == {"haem-a", "haem-b", "ops"}
    assert oncall.operators == "ops" and "ops" not in teams  # the pipeline's pages, no patient's
    assert oncall.pages("critical") and oncall.pages("error")
    assert not oncall.pages("warning") and not oncall.pages("info")


@pytest.mark.parametrize(("text", "field"), [
    ("targets: {a: {}}\nteams: {}\n", "targets.a"),
    ("targets: {a: {pagerduty: k}}\nteams: {t: {escalation: []}}\n", "teams.t.escalation"),
    ("targets: {a: {pagerduty: k}}\nteams: {t: {escalation: [{after_min: 5, notify: [a]}, "
     "{after_min: 1, notify: [a]}]}}\n", "teams.t.escalation"),
    ("targets: {a: {email: not-an-address}}\nteams: {}\n", "targets.a.email"),
    ("targets: {a: {pagerduty: k}}\nteams: {}\nschedules: {s: {timezone: Mars/Base, "
     "start: 2026-11-02T08:00, rotation: [a]}}\n", "schedules.s.timezone"),
    ("targets: {a: {pagerduty: k}}\nteams: {}\npaging: {severities: [loud]}\n",
     "paging.severities"),
    ("targets: {a: {pagerduty: k}}\nteams: {}\ntokens: {a: short}\n", "tokens.a"),
    ("targets: [\n", "line"),
])
def test_a_bad_file_is_one_line_naming_file_and_field(tmp_path: Path, text: str,
                                                       field: str) -> None:
    path = tmp_path / "oncall.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_oncall(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"VITALS_ONCALL ({path})") and field in msg


def test_a_team_of_the_patients_file_must_exist(tmp_path: Path) -> None:
    path = write_oncall(tmp_path / "oncall.yaml", "http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="no team haem-b"):
        load_oncall(path, {"haem-a", "haem-b"})


def test_schedule_rotates_weekly_in_its_time_zone_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "oncall.yaml"
    path.write_text("""
targets: {alice: {pagerduty: a}, bob: {pagerduty: b}, carol: {pagerduty: c}}
schedules:
  nurse:
    timezone: Europe/London
    start: 2026-10-19T08:00
    rotation: [alice, bob]
    overrides: [{target: carol, start: 2026-11-21T20:00, end: 2026-11-22T08:00}]
teams: {t: {escalation: [{after_min: 0, notify: [nurse]}]}}
""")
    oncall = load_oncall(path)

    def who(iso: str) -> str:
        return oncall.resolve("nurse", dt.datetime.fromisoformat(iso))[0]

    assert who("2026-10-19T06:59:00+00:00") == "bob"  # BST: 08:00 London is 07:00 UTC
    assert who("2026-10-19T07:00:00+00:00") == "alice"
    assert who("2026-10-26T07:59:00+00:00") == "alice"  # GMT now: handoff at 08:00 UTC
    assert who("2026-10-26T08:00:00+00:00") == "bob"
    assert who("2026-11-02T08:00:00+00:00") == "alice"
    assert who("2026-11-21T20:30:00+00:00") == "carol"  # the one-off override
    assert who("2026-11-22T08:00:00+00:00") == "alice"  # back to the rotation
    assert who("2026-11-23T08:00:00+00:00") == "bob"


def test_tokens_plain_or_hashed(tmp_path: Path) -> None:
    oncall = load_oncall(write_oncall(tmp_path / "oncall.yaml", "http://127.0.0.1:1"))
    assert oncall.who("token-alice-0123456789") == "alice"
    assert oncall.who(BOB_TOKEN) == "bob"
    assert oncall.who("") is None and oncall.who("token-alice") is None


def test_new_settings_for_the_channels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vitals.settings import load_settings

    monkeypatch.chdir(tmp_path)
    s = load_settings(_env_file=None, smtp_url="smtp://mail:pw@127.0.0.1:2525",
                      webhook_secret="s3cret")
    assert s.smtp_url == "smtp://mail:pw@127.0.0.1:2525" and s.webhook_secret == "s3cret"
    assert load_settings(_env_file=None).smtp_url is None
    with pytest.raises(ConfigError, match="VITALS_SMTP_URL"):
        load_settings(_env_file=None, smtp_url="http://127.0.0.1:25")


def test_roles_per_token_a_bare_string_is_a_nurse(tmp_path: Path) -> None:
    oncall = load_oncall(write_oncall(tmp_path / "oncall.yaml", "http://127.0.0.1:1"))
    assert oncall.identify("token-alice-0123456789") == ("alice", "lead")
    assert oncall.identify(BOB_TOKEN) == ("bob", "nurse")
    assert oncall.identify("token-alice-012345678") is None
    path = tmp_path / "bad.yaml"
    path.write_text("targets: {a: {pagerduty: k}}\nteams: {}\n"
                    "tokens: {a: {token: a-long-enough-token, role: admin}}\n")
    with pytest.raises(ConfigError, match=r"tokens\.a"):
        load_oncall(path)


def test_the_embedded_demo_file_opens_the_api_to_nobody(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    oncall = load_oncall(None, {"haem-a", "haem-b"})
    assert oncall.tokens == {}
    for public in ("demo-token-nurse-alice", "demo-token-nurse-bob", "demo-token-nurse-carol"):
        assert oncall.identify(public) is None
    assert "no API tokens" in caplog.text and "VITALS_ONCALL is not set" in caplog.text


# Every number of the on-call file, as a path into the YAML document and its allowed range.
NUMERIC_FIELDS = {
    "teams.haem-a.escalation[0].after_min": (0, 1440),
    "teams.haem-a.escalation[1].after_min": (0, 1440),
    "teams.haem-a.repeat_min": (1, 1440),
    "paging.repeat_min": (1, 1440),
    "paging.resolve_hold_min": (0, 1440),
    "paging.silence_max_days": (0, 30),
}
GOOD = {"targets": {"a": {"pagerduty": "k"}},
        "teams": {"haem-a": {"repeat_min": 10, "escalation": [
            {"after_min": 0, "notify": ["a"]}, {"after_min": 1440, "notify": ["a"]}]}},
        "paging": {"repeat_min": 10, "resolve_hold_min": 5, "silence_max_days": 7}}


def _with(field: str, value: object) -> dict:
    import copy
    import re

    doc = copy.deepcopy(GOOD)
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", field)]
    node = doc
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return doc


BAD_NUMBERS = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), True, "10", [1], None]),
    st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False),
    st.integers(max_value=-1),
    st.floats(min_value=1441, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1441, max_value=10**30))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(NUMERIC_FIELDS)), value=BAD_NUMBERS)
def test_every_number_refuses_nan_inf_negative_and_absurd(tmp_path: Path, field: str,
                                                          value: object) -> None:
    low, high = NUMERIC_FIELDS[field]
    if value is None and field.endswith("repeat_min"):
        value = float("nan")  # null is valid there: repeats off (or the default)
    if field == "paging.silence_max_days" and isinstance(value, int | float) and not isinstance(
            value, bool) and value == value and 0 < value <= high:
        value = high + 1
    path = tmp_path / "oncall.yaml"
    path.write_text(yaml.safe_dump(_with(field, value)))
    with pytest.raises(ConfigError) as exc:
        load_oncall(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"VITALS_ONCALL ({path}): ")
    assert field in msg, msg
    # ... and the bounds themselves load
    for ok in (low if not field.endswith("silence_max_days") else 0.5, high):
        path.write_text(yaml.safe_dump(_with(field, ok)))
        load_oncall(path)


def test_a_nan_written_as_yaml_stops_at_start(tmp_path: Path) -> None:
    path = tmp_path / "oncall.yaml"
    path.write_text("targets: {a: {pagerduty: k}}\n"
                    "teams: {t: {escalation: [{after_min: .inf, notify: [a]}]}}\n")
    with pytest.raises(ConfigError, match=r"teams\.t\.escalation\[0\]\.after_min: Input "
                                          "should be a finite number"):
        load_oncall(path)
