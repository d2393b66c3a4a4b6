"""Scenario files: the example covers every episode kind and artefact; bad files stop with one
line naming the file and field. The truth file round-trips."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from simulators import stream, truth
from simulators.plan import DAY, HOUR, MINUTE, SECOND, format_duration, parse_duration
from simulators.scenario import build, load_scenario
from tests.simulators.helpers import START, run, sim_of
from vitals.settings import ConfigError

EXAMPLE = Path(__file__).parents[2] / "simulators" / "scenarios" / "example.yaml"


def test_durations() -> None:
    assert parse_duration("2d6h") == 2 * DAY + 6 * HOUR
    assert parse_duration("1h30m") == 90 * MINUTE
    assert parse_duration("90s") == parse_duration(90) == 90 * SECOND
    assert parse_duration("-30s") == -30 * SECOND and parse_duration("500ms") == 500
    assert parse_duration("10min") == 10 * MINUTE
    for bad in ("", "2x", "1h 30", "h", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert format_duration(2 * DAY + 6 * HOUR + 5) == "2d6h5ms"


def test_the_example_covers_every_episode_kind_and_artefact() -> None:
    s = stream.Stream(build(load_scenario(EXAMPLE), START), line=True)
    seen = set()
    for b in s.batches():  # two million messages: look at them as they come
        text = "".join(b.items)
        seen |= {k for k in (r'\"ts\":\"', r'\"unit\":\"F', r'\"rr\":', "readings",
                             "/status") if k in text}
    assert len(seen) == 5  # RFC 3339 clocks, Fahrenheit, RR, batches, status messages
    t = truth.build(s.sim, s.injected)
    assert {e.kind for e in t.episodes} == {"crs", "masked", "infection"}
    assert {e.grade for e in t.episodes if e.kind == "crs"} >= {2, 3, 4}
    assert {p.max_crs_grade for p in t.patients} >= {0, 2, 4}
    assert {a.kind for a in t.artefacts} == {
        "offline", "probe_off", "motion", "patch_off", "blanket", "clock_skew", "low_battery",
        "malformed", "duplicate"}
    assert t.dips  # physiological desaturations at night


@pytest.mark.parametrize(("text", "expected"), [
    ("duration: 2x\npatients: [{id: A}]", "duration: expected a duration such as 2d6h"),
    ("duration: 1d\npatients: [{id: A, episodes: [{kind: crs, onset: 2h}]}]",
     "patients[0].episodes[0]: a crs episode needs a grade (1-4)"),
    ("duration: 1d\npatients: [{id: A, episodes: [{kind: crs, grade: 5}]}]",
     "patients[0].episodes[0].grade: Input should be less than or equal to 4"),
    ("duration: 1d\npatients: [{id: 'bad id'}]", "patients[0].id: String should match"),
    ("duration: 1d\npatients: [{id: A, colour: red}]", "patients[0].colour: Extra inputs"),
    ("duration: 1d\npatients: [{id: A, events: [{device: ox-9, kind: offline, start: 1h, "
     "duration: 1h}]}]", "patients[0]: event on device ox-9, which is not listed"),
    ("duration: 1d\npatients: [{id: A, events: [{device: th-1, kind: probe_off, start: 1h, "
     "duration: 1h}]}]", "patients[0]: probe_off does not happen to a thermometer"),
    ("duration: 1d\npatients: [{id: A, episodes: [{kind: infection, onset: 2d}]}]",
     "episode onset is outside the scenario"),
    ("duration: 1d\npatients: [{id: A}, {id: A}]", "patient id A is listed twice"),
    ("duration: 1d\npatients: []", ": no patients listed"),
    ("duration: 1d\npatients: [{id: A, devices: [{id: o, type: oximeter, interval: 2h}]}]",
     "patients[0].devices[0]: interval must be 100ms-1h"),
    ("patients: [: x", "not valid YAML at line 1"),
])
def test_a_bad_scenario_stops_with_one_line_naming_the_file_and_field(
        tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    message = str(err.value)
    assert message.startswith(f"scenario ({path}): ")
    assert expected in message and "\n" not in message


def numbers(node: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths to every number and duration in a parsed scenario."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from numbers(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from numbers(value, (*path, i))
    elif (isinstance(node, int | float) and not isinstance(node, bool)) or (
            isinstance(node, str) and re.fullmatch(r"-?[\d.]+(ms|min|s|m|h|d)\w*", node)):
        yield path


def fields_of(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path if isinstance(part, str))


EXAMPLE_NUMBERS = {fields_of(path): path for path in numbers(yaml.safe_load(EXAMPLE.read_text()))}
# where a negative number means something: before the start, west of UTC, a clock behind
NEGATIVE_MEANS_SOMETHING = {"patients.infusion", "patients.utc_offset", "patients.events.value",
                            "patients.events.offset", "patients.devices.clock_skew"}


@pytest.mark.parametrize("field", sorted(EXAMPLE_NUMBERS))
@pytest.mark.parametrize("bad", [".nan", ".inf", "-.inf", "-1", "1e12"])
def test_every_number_refuses_nan_inf_negative_and_absurd(tmp_path: Path, field: str,
                                                          bad: str) -> None:
    assert len(EXAMPLE_NUMBERS) > 30
    path = EXAMPLE_NUMBERS[field]
    doc = yaml.safe_load(EXAMPLE.read_text())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "__VALUE__"
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(doc, sort_keys=False).replace("__VALUE__", bad))
    try:
        build(load_scenario(scenario), START)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and str(scenario) in message, message
        assert str(path[-1]) in message or "duration" in message or "onset" in message, message
        return
    assert bad == "-1" and field in NEGATIVE_MEANS_SOMETHING, (field, bad)


def test_a_missing_scenario_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scenario \(.*nope.yaml\): cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_the_truth_file_round_trips(tmp_path: Path) -> None:
    r = run(sim_of("""
seed: 2
duration: 12h
patients:
  - id: T1
    product: axi-cel
    devices:
      - {id: ox-1, type: oximeter, interval: 5s, rates: {duplicate: 0.01, malformed: 0.01}}
    episodes: [{kind: crs, grade: 2, onset: 1h, antipyretics: [3h]}]
    events: [{device: ox-1, kind: motion, start: 30m, duration: 20s, value: 9, flagged: false}]
"""))
    truth.dump(r.truth, tmp_path / "t.json")
    back = truth.load(tmp_path / "t.json")
    assert back == r.truth
    (e,) = back.episodes
    assert (e.patient, e.kind, e.grade, e.start) == ("T1", "crs", 2, START + HOUR)
    assert e.fever_onset and e.start < e.fever_onset < e.end and e.peak_temp > 38
    assert e.antipyretics == [START + 3 * HOUR]
    motion = [a for a in back.artefacts if a.kind == "motion"]
    assert [(a.start, a.end, a.value, a.flagged) for a in motion] == [
        (START + 30 * MINUTE, START + 30 * MINUTE + 20 * SECOND, 9.0, False)]
    (tmp_path / "other.json").write_text('{"format": "something-else", "source": "", '
                                         '"seed": 0, "start": 0, "end": 0}')
    with pytest.raises(ValueError, match="not a vitals-truth/1 truth file"):
        truth.load(tmp_path / "other.json")
