"""The on-call file: validation in one line, schedules, tokens, the embedded default."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from alerting.oncall import load_oncall
from tests.alerting.support import BOB_TOKEN, write_oncall
from vitals.patients import load_patients
from vitals.settings import ConfigError


def test_the_embedded_default_covers_the_demo_teams() -> None:
    teams = {p.team for p in load_patients(None)}
    oncall = load_oncall(None, teams)
    assert set(oncall.teams) == {"haem-a", "haem-b"}
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
