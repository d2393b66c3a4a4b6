"""`bench.evaluation_speed` runs `vitals evaluate` as a user would, times each run, and says
whether the runs wrote the same report; `python -m bench` puts it in its table."""

from __future__ import annotations

from bench import evaluation_speed, report


def test_the_evaluation_benchmark_times_runs_that_write_the_same_report() -> None:
    result = evaluation_speed.run(runs=2, patients=2, days=0.2)
    assert [run["readings"] for run in result["runs"]] == [result["runs"][0]["readings"]] * 2
    assert result["runs"][0]["readings"] > 2 * 0.2 * 86_400  # two 1 Hz oximeters at least
    assert result["same_report"] is True
    assert 0 < result["median_s"] <= result["worst_s"] == max(
        run["wall_s"] for run in result["runs"])
    assert all(run["cpu_s"] > 0 for run in result["runs"])
    row, = report.rows({"evaluation_speed": {"result": result}})
    assert row.target == "<= 120" and row.met is (result["worst_s"] <= 120)
