"""deploy/influxdb and deploy/grafana: the files parse, and they agree with each other and with
the storage schema. Neither InfluxDB 2 nor Grafana runs here, so whether Grafana renders the
dashboard and InfluxDB accepts the task is not tested; the names and thresholds are."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from storage import schema

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GRAFANA = DEPLOY / "grafana"
DS_UID = "vitals-influxdb"


def dashboard() -> dict:
    return json.loads((GRAFANA / "dashboards" / "patient-vitals.json").read_text())


def test_every_yaml_and_json_file_parses() -> None:
    yamls = [*GRAFANA.rglob("*.yaml"), *(DEPLOY / "influxdb").rglob("*.yaml")]
    jsons = [*GRAFANA.rglob("*.json"), *(DEPLOY / "influxdb").rglob("*.json")]
    assert len(yamls) >= 2 and len(jsons) >= 1
    for f in yamls:
        assert isinstance(yaml.safe_load(f.read_text()), dict), f
    for f in jsons:
        assert isinstance(json.loads(f.read_text()), dict), f


def test_the_datasource_is_influxdb_2_with_flux() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())
    [source] = ds["datasources"]
    assert source["type"] == "influxdb" and source["uid"] == DS_UID
    assert source["jsonData"]["version"] == "Flux"
    assert source["secureJsonData"]["token"] == "${GRAFANA_INFLUX_TOKEN}"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/vitals.yaml").read_text())
    assert providers["providers"][0]["type"] == "file"


def test_the_dashboard_picks_a_patient_and_shows_each_vital_with_its_thresholds() -> None:
    d = dashboard()
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["patient"]["type"] == "query"
    assert 'tag: "patient"' in variables["patient"]["query"]
    assert variables["bucket"]["query"] == "vitals"
    panels = {p["title"]: p for p in d["panels"]}
    expected = {"Temperature": ("temp", [None, 38.0]), "Heart rate": ("hr", [None, 130]),
                "SpO2": ("spo2", [None, 90, 93])}
    for title, (field, steps) in expected.items():
        p = panels[title]
        query = p["targets"][0]["query"]
        assert f'r._measurement == "{schema.READINGS}"' in query
        assert f'r._field == "{field}"' in query and 'r.patient == "${patient}"' in query
        assert [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]] == steps
    for p in d["panels"]:
        assert p["datasource"]["uid"] == DS_UID


def test_alerts_are_annotations_from_the_alerts_measurement() -> None:
    [alerts] = [a for a in dashboard()["annotations"]["list"] if a["name"] == "Alerts"]
    assert alerts["datasource"]["uid"] == DS_UID and alerts["enable"]
    query = alerts["target"]["query"]
    assert f'r._measurement == "{schema.ALERTS}"' in query and 'r._field == "summary"' in query
    assert alerts["mappings"]["text"]["value"] == "text"


def test_the_downsampling_task_and_the_init_script_agree() -> None:
    task = (DEPLOY / "influxdb" / "downsample.flux").read_text()
    assert 'option task = {name: "vitals-downsample-5m"' in task
    assert "aggregateWindow(every: 5m, fn: mean" in task
    assert re.search(r'^raw = "vitals"$', task, re.M) and re.search(r'^long = "vitals_5m"$',
                                                                     task, re.M)
    for field in schema.READING_FIELDS:
        assert f'"{field}"' in task
    init = DEPLOY / "influxdb" / "init.sh"
    subprocess.run(["bash", "-n", str(init)], check=True)
    script = init.read_text()
    assert 'RAW_RETENTION="${VITALS_RAW_RETENTION:-90d}"' in script
    assert "vitals-downsample-5m" in script and 'sed -e "s/^raw = \\"vitals\\"$/' in script
