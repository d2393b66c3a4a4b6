"""The table of `python -m bench`: each benchmark's headline numbers against their targets,
the ratios measured side by side in the same run, and the machine's state, as Markdown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

E2E_KEPT_UP_RATE = 10_000  # issue #15: kept up up to here
E2E_P99_RATE = 5000  # ... and p99 publish -> page <= E2E_P99_MS up to here
E2E_P99_MS = 1000


@dataclass(frozen=True)
class Row:
    metric: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target


def _n(x: float | None, unit: str = "") -> str:
    return "-" if x is None else f"{x:,.0f}{unit}"


SPLIT = {"rules": "publish -> alert on Kafka", "alerting": "-> page"}


def split_text(split: dict[str, list[int | None]]) -> str:
    return ", ".join(f"{SPLIT[n]} {_n(v[0])} / {_n(v[1])}" for n, v in split.items())


def _at_least(x: float | None, target: float) -> bool | None:
    return None if x is None else x >= target


def _at_most(x: float | None, target: float) -> bool | None:
    return None if x is None else x <= target


def _rows_ingest(r: dict[str, Any]) -> list[Row]:
    return [Row("ingest: live readings/s (MQTT -> vitals ingest -> Kafka)",
                _n(r["live_readings_per_s"]), ">= 15,000",
                _at_least(r["live_readings_per_s"], 15_000)),
            Row("ingest: backlog drain readings/s", _n(r["backlog_drain_readings_per_s"])),
            Row("raw ceiling: one paho publisher -> one subscriber, msg/s",
                _n(r["raw_ceiling_msg_per_s"]))]


def _rows_engine(r: dict[str, Any]) -> list[Row]:
    return [Row("pure engine: readings/s", _n(r["readings_per_s"]), ">= 100,000",
                _at_least(r["readings_per_s"], 100_000)),
            Row(f"pure engine: state per patient, KiB ({r['hours']} h of history)",
                f"{r['state_kib_max']}", "<= 32", _at_most(r["state_kib_max"], 32))]


def _rows_rules(r: dict[str, Any]) -> list[Row]:
    rows = [Row("rules worker (Faust, one process): readings/s", _n(r["readings_per_s"]),
                ">= 10,000", _at_least(r["readings_per_s"], 10_000))]
    q = r.get("quix")
    if q is not None:
        value = _n(q.get("readings_per_s")) if "readings_per_s" in q else "not measured"
        rows.append(Row("Quix Streams app, the same pure engine: readings/s", value))
    return rows


def _rows_store(r: dict[str, Any]) -> list[Row]:
    return [Row("store: points/s into VictoriaMetrics (drain)", _n(r["drain_points_per_s"]),
                ">= 40,000", _at_least(r["drain_points_per_s"], 40_000))]


def _rows_simulate(r: dict[str, Any]) -> list[Row]:
    return [Row("simulate: readings/s generated to a file", _n(r["to_file_readings_per_s"]),
                ">= 200,000", _at_least(r["to_file_readings_per_s"], 200_000)),
            Row("simulate --speed max: msg/s published", _n(r["simulate_msg_per_s"])),
            Row("replay --speed max: msg/s published", _n(r["replay_msg_per_s"]))]


def _rows_alerting(r: dict[str, Any]) -> list[Row]:
    return [Row(f"alerting: p99 ms, Kafka -> PagerDuty request ({r['rate']:.0f} events/s)",
                f"{r['p99_ms']}", "<= 200", _at_most(r["p99_ms"], 200) and
                r["paged"] == r["events"])]


def _rows_failover(r: dict[str, Any]) -> list[Row]:
    return [Row(f"alerting failover: s from killing the leader until the standby leads "
                f"(worst of {r['rounds']}, lease {r['lease_s']:.0f} s)",
                f"{r['takeover_worst_s']}", "<= 15",
                _at_most(r["takeover_worst_s"], 15) and r["pages_doubled"] == 0),
            Row("alerting failover: s from the kill until an event sent after it is paged "
                "(worst)", f"{r['paged_worst_s']}")]


def _rows_e2e(r: dict[str, Any]) -> list[Row]:
    rows = []
    for lv in r["levels"]:
        rate = int(lv["offered"])
        target = rate <= E2E_KEPT_UP_RATE
        kept = "kept up" if lv["kept_up"] else "NOT kept up"
        rows.append(Row(
            f"end to end at {rate:,}/s offered: readings/s sustained ({kept})",
            _n(lv["sustained_per_s"]), "kept up" if target else "",
            lv["kept_up"] if target else None))
        p99 = lv["p99_ms"]
        complete = lv["paged"] == lv["probes"] and not lv["paged_before_tip"]
        target = rate <= E2E_P99_RATE
        rows.append(Row(f"end to end at {rate:,}/s offered: alert latency p50 / p99 ms "
                        f"({lv['paged']}/{lv['probes']} probes paged)",
                        f"{_n(lv['p50_ms'])} / {_n(p99)}",
                        f"p99 <= {E2E_P99_MS:,}" if target else "",
                        (_at_most(p99, E2E_P99_MS) and complete) if target else None))
    return rows


def _rows_evaluation(r: dict[str, Any]) -> list[Row]:
    runs = len(r["runs"])
    return [Row(f"evaluation of {r['patients']} patients x {r['days']:g} days, s (worst / "
                f"median of {runs}{'' if r['same_report'] else '; REPORTS DIFFER'})",
                f"{r['worst_s']:.1f} / {r['median_s']:.1f}", f"<= {r['target_s']:.0f}",
                _at_most(r["worst_s"], r["target_s"]) and r["same_report"])]


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "ingest_throughput": _rows_ingest, "engine_throughput": _rows_engine,
    "rules_worker_throughput": _rows_rules, "store_throughput": _rows_store,
    "simulate_throughput": _rows_simulate, "alerting_latency": _rows_alerting,
    "alerting_failover": _rows_failover, "end_to_end": _rows_e2e,
    "evaluation_speed": _rows_evaluation}


def rows(results: dict[str, Any]) -> list[Row]:
    out = []
    for name, make in ROWS.items():
        entry = results.get(name)
        if entry is None:
            continue
        if "error" in entry:
            out.append(Row(f"{name}: FAILED", entry["error"][-300:], met=False))
        else:
            out.extend(make(entry["result"]))
    return out


def ratios(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, ratio with its two numbers), for the comparisons made in the same run."""
    def res(name: str) -> dict[str, Any] | None:
        return results.get(name, {}).get("result")

    out = []
    ingest, rules, e2e = res("ingest_throughput"), res("rules_worker_throughput"), res("end_to_end")
    if ingest:
        raw = ingest["raw_ceiling_msg_per_s"]
        out.append(("ingest live / raw MQTT ceiling",
                    f"{ingest['live_readings_per_s'] / raw:.2f} ({ingest['live_readings_per_s']:,}"
                    f" readings/s vs {raw:,} msg/s, same broker, same run)"))
        kept = [lv["sustained_per_s"] for lv in (e2e or {}).get("levels", [])
                if lv["kept_up"] and lv["sustained_per_s"]]
        if kept and not (e2e or {}).get("summary"):
            out.append(("end to end (highest level kept up) / raw MQTT ceiling",
                        f"{max(kept) / raw:.2f} ({max(kept):,} vs {raw:,})"))
    if e2e and e2e.get("summary"):
        summary = e2e["summary"]
        out.append(("end to end (highest level kept up) / raw MQTT ceiling of the same run",
                    f"{summary['kept_up_share_worst']} worst, {summary['kept_up_share_median']}"
                    f" median of {len(e2e['runs'])} runs (aim >= 0.6)"))
    if rules and "quix" in rules:
        q = rules["quix"]
        if "readings_per_s" in q:
            out.append(("Faust rules worker / Quix Streams app (same topic, same run)",
                        f"{rules['readings_per_s'] / q['readings_per_s']:.2f} "
                        f"({rules['readings_per_s']:,} vs {q['readings_per_s']:,} readings/s; "
                        "both run the project's pure engine: equal work, framework overhead; "
                        "aim >= 1)"))
        else:
            out.append(("Faust rules worker / Quix Streams app",
                        f"not measured: {q.get('error')}"))
    sim = res("simulate_throughput")
    if sim:
        out.append(("vitals simulate --speed max / raw ceiling (simulate benchmark)",
                    f"{sim['simulate_msg_per_s'] / sim['raw_ceiling_msg_per_s']:.2f}"))
    return out


def _load(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def markdown(results: dict[str, Any], machine: dict[str, Any]) -> str:
    lines = ["# Benchmarks", "",
             f"{machine['started']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
             f"Python {machine['python']}, commit {machine['commit']}"
             + (" (quick run: smaller sizes, shorter levels)" if machine["quick"] else ""), "",
             f"Load average before the start: {_load(machine['load_before'])} (1, 5, 15 min);"
             f" at the end: {_load(machine['load_after'])}. Other processes on these cores "
             "disturb the numbers; the load average at each benchmark's start is in the JSON.",
             "",
             "| metric | value | target | met? |", "|---|---|---|---|"]
    for r in rows(results):
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.metric} | {r.value} | {r.target} | {met} |")
    lines += ["", "## Ratios (measured side by side in the same run)", "",
              "| comparison | ratio |", "|---|---|"]
    lines += [f"| {what} | {ratio} |" for what, ratio in ratios(results)] or [
        "| (none: their benchmarks did not run) | |"]
    e2e = results.get("end_to_end", {}).get("result")
    if e2e:
        lines += ["", "## End to end, per level", "",
                  f"{e2e['patients']} patients, {e2e['publishers']} publishing processes, "
                  f"{e2e.get('rules_workers', 1)} rules worker(s), "
                  f"{e2e['seconds']:g} s per level, a probe every {e2e['probe_every']:g} s.", "",
                  "| offered/s | published/s | ingested/s | sustained/s | backlog at end | "
                  "drained (s) | kept up | probes paged | p50 ms | p99 ms | max ms | "
                  "latency split p50 / p99 ms | cores used |",
                  "|" + "---|" * 13]
        for lv in e2e["levels"]:
            cores = ", ".join(f"{n} {c}" for n, c in lv["cores"].items())
            lines.append(
                f"| {lv['offered']:,.0f} | {_n(lv['published_per_s'])} | "
                f"{_n(lv['ingested_per_s'])} | {_n(lv['sustained_per_s'])} | "
                f"{_n(lv['backlog_at_end'])} | {lv['drained_s']} | "
                f"{'yes' if lv['kept_up'] else 'no'} | {lv['paged']}/{lv['probes']} | "
                f"{_n(lv['p50_ms'])} | {_n(lv['p99_ms'])} | {_n(lv['max_ms'])} | "
                f"{split_text(lv['split_ms'])} | {cores} |")
        rss = ", ".join(f"{n} {v:g}" for n, v in e2e["peak_rss_mib"].items())
        lines += ["", f"Peak RSS (MiB): {rss}."]
    lines += ["", "What each number means: bench/README.md.", ""]
    return "\n".join(lines)
