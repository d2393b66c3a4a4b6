"""The rules file: the embedded defaults follow CLINICAL.md, every rule names its source, and a
bad file stops with one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stream_rules.config import Rules, default_rules_path, load_rules
from stream_rules.rules import RULES
from vitals.settings import ConfigError


def test_defaults_follow_clinical_md_and_every_rule_names_its_source() -> None:
    rf = load_rules(None)
    r = rf.rules
    assert (r.fever.fire_at, r.high_fever.fire_at) == (38.0, 39.0)  # ASTCT
    assert (r.desaturation.fire_at, r.severe_desaturation.fire_at) == (93, 90)
    assert r.tachycardia.fire_at == 131  # NEWS2 scores 3 from 131
    assert (r.news2.aggregate_at, r.news2.single_at, r.news2_high.aggregate_at) == (5, 3, 7)
    assert rf.evaluation.crs_window_days == 14
    for name in type(r).model_fields:
        assert getattr(r, name).source.strip(), name


def write(tmp_path: Path, change: dict) -> Path:
    data = yaml.safe_load(default_rules_path().read_text())
    for dotted, value in change.items():
        node = data
        *path, last = dotted.split(".")
        for part in path:
            node = node.setdefault(part, {})
        if value is None:
            del node[last]
        else:
            node[last] = value
    p = tmp_path / "rules.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize(("change", "named"), [
    ({"rules.fever.source": None}, "rules.fever.source"),
    ({"rules.fever.clear_below": 38.5}, "clear_below must not be above fire_at"),
    ({"rules.desaturation.clear_above": 90}, "clear_above must not be below fire_at"),
    ({"rules.fever.fire_at": "hot"}, "rules.fever.fire_at"),
    ({"rules.fever.severity": "loud"}, "rules.fever.severity"),
    ({"rules.fever.fire_after": 5}, "rules.fever.fire_after"),  # a typo is not ignored
    ({"patients": {"P001": {"rules": {"fevr": {"fire_at": 37.8}}}}}, "no rule named 'fevr'"),
    ({"patients": {"P001": {"rules": {"fever": {"fire_at": "x"}}}}}, "patients.P001.rules"),
])
def test_a_bad_rules_file_stops_with_one_line(tmp_path: Path, change: dict, named: str
                                              ) -> None:
    with pytest.raises(ConfigError) as exc:
        load_rules(write(tmp_path, change))
    text = str(exc.value)
    assert "\n" not in text and text.startswith("VITALS_RULES (") and named in text


def test_per_patient_overrides_apply_to_that_patient_only(tmp_path: Path) -> None:
    rf = load_rules(write(tmp_path, {"patients": {"P001": {
        "baseline": {"hr": 64}, "rules": {"fever": {"fire_at": 37.8, "clear_below": 37.5}}}}}))
    assert rf.for_patient("P001").rules.fever.fire_at == 37.8
    assert rf.for_patient("P001").rules.fever.source == rf.rules.fever.source
    assert rf.for_patient("P002").rules.fever.fire_at == 38.0
    assert rf.patients["P001"].baseline.hr == 64


def test_the_rules_section_has_one_field_per_registered_rule() -> None:
    rf = load_rules(None)
    assert list(Rules.model_fields) == [rule.name for rule in RULES]
    for rule in RULES:
        assert isinstance(getattr(rf.rules, rule.name), rule.config), rule.name
    embedded = yaml.safe_load(default_rules_path().read_text())
    assert set(embedded["rules"]) == {rule.name for rule in RULES}


def numeric_fields(node: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every number in the rules file."""
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in numeric_fields(value, (*path, key))]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return [path]
    return []


DEFAULTS = yaml.safe_load(default_rules_path().read_text())
NUMBERS = [p for p in numeric_fields(DEFAULTS) if p[0] != "version"]


def with_value(path: tuple[str, ...], text: str) -> str:
    """The default rules file as YAML text with one number replaced by `text` (a YAML token)."""
    doc = yaml.safe_load(default_rules_path().read_text())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "__VALUE__"
    return yaml.safe_dump(doc, sort_keys=False).replace("__VALUE__", text)


@pytest.mark.parametrize("path", NUMBERS, ids=[".".join(p) for p in NUMBERS])
@pytest.mark.parametrize("bad", [".nan", ".inf", "-.inf", "-1", "1e12"])
def test_every_number_refuses_nan_inf_negative_and_absurd(tmp_path: Path,
                                                          path: tuple[str, ...],
                                                          bad: str) -> None:
    assert len(NUMBERS) > 40
    rules = tmp_path / "rules.yaml"
    rules.write_text(with_value(path, bad))
    try:
        load_rules(rules)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and str(rules) in message and path[-1] in message, message
        return
    # a negative value is fine only where negative means something (a site correction)
    assert bad == "-1" and path[:2] == ("temperature", "site_correction_c"), path
