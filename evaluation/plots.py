"""PNG plots (matplotlib, Agg): the delay distribution, and per-patient figures of the worst
cases with the engine's trend points, pages marked and the truth shaded."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PolyCollection

from evaluation.score import HOUR, EpisodeScore, FalsePage, is_page
from simulators.truth import Truth
from vitals.records import AlertEvent

SHADE = {"probe_off": "#bbbbbb", "motion": "#dddd88", "patch_off": "#88bbdd",
         "blanket": "#ddaa88", "offline": "#cc99cc"}


def _dates(ms: np.ndarray) -> np.ndarray:
    return np.asarray(ms, "datetime64[ms]")


def delay_histogram(episodes: list[EpisodeScore], path: Path) -> Path:
    delays = [e.delay_min for e in episodes if e.delay_min is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    if delays:
        ax.hist(delays, bins=min(40, max(5, len(delays) // 2)), color="#4477aa")
        med = float(np.median(delays))
        ax.axvline(med, color="k", ls="--", label=f"median {med:.1f} min")
        ax.axvline(15, color="r", ls=":", label="target 15 min")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no detected episode with a fever onset", ha="center",
                transform=ax.transAxes)
    ax.set_xlabel("first page - true onset of fever (min)")
    ax.set_ylabel("episodes")
    ax.set_title("Detection delay from sustained fever")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def worst_cases(episodes: list[EpisodeScore], false_pages: list[FalsePage], limit: int = 6
                ) -> list[tuple[str, str, int, int]]:
    """(patient, why, from, to): missed episodes, then the longest delays, then false pages."""
    out: list[tuple[str, str, int, int]] = []
    missed = [e for e in episodes if e.scorable and e.first_page is None]
    slow = sorted((e for e in episodes if e.delay_min is not None), key=lambda e: -e.delay_min)  # type: ignore[operator]
    for e in missed[:2]:
        out.append((e.patient, f"missed {e.label}", e.start - 6 * HOUR, e.end + 2 * HOUR))
    for e in slow[:2]:
        out.append((e.patient, f"{e.label}: delay {e.delay_min:.0f} min", e.start - 6 * HOUR,
                    e.end + 2 * HOUR))
    for f in false_pages[: max(0, limit - len(out))]:
        out.append((f.patient, f"false page {f.rule} ({f.cause})", f.detected_at - 12 * HOUR,
                    f.detected_at + 12 * HOUR))
    if len(out) < limit:  # fill with more delays and misses
        for e in slow[2:] + missed[2:]:
            if len(out) >= limit:
                break
            out.append((e.patient, f"{e.label}", e.start - 6 * HOUR, e.end + 2 * HOUR))
    return out[:limit]


def _spans(ax: plt.Axes, spans: list[tuple[int, int]], color: str, alpha: float) -> None:
    """Shade each (start, end) epoch ms over the axis' whole height: one collection, not a
    patch per span (axvspan: half of a figure's time), since a patient's fortnight can hold
    hundreds of artefacts."""
    if spans:
        x = mdates.date2num(_dates(np.array(spans, np.int64)))
        ax.add_collection(PolyCollection(
            [((a, 0.0), (a, 1.0), (b, 1.0), (b, 0.0)) for a, b in x.tolist()],
            facecolors=color, edgecolors=color, linewidths=1.0, alpha=alpha,  # as axvspan's:
            # an edge keeps a span of seconds (a motion artefact) visible
            transform=ax.get_xaxis_transform()), autolim=False)


def patient_figure(patient: str, why: str, lo: int, hi: int, trends: dict[str, np.ndarray],
                   alerts: list[AlertEvent], truth: Truth, path: Path) -> Path:
    lo, hi = max(lo, truth.start), min(hi, truth.end)
    ts = trends["ts"]
    sel = (ts >= lo) & (ts <= hi)
    episodes = [e for e in truth.episodes if e.patient == patient and e.start <= hi and e.end >= lo]
    shades: dict[str, list[tuple[int, int]]] = {}
    for a in truth.artefacts:
        if a.patient == patient and a.kind in SHADE and a.start <= hi and a.end >= lo:
            shades.setdefault(SHADE[a.kind], []).append((a.start, a.end))
    lines = [e.fever_onset for e in episodes if e.fever_onset and lo <= e.fever_onset <= hi]
    pages = [a.detected_at for a in alerts if is_page(a) and lo <= a.detected_at <= hi]
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    for ax, (key, unit, color) in zip(axes, (("temp", "°C (core-eq.)", "#cc3311"),
                                             ("hr", "/min", "#0077bb"),
                                             ("spo2", "%", "#009988")), strict=True):
        ax.plot(_dates(ts[sel]), trends[key][sel], color=color, lw=0.8)
        ax.set_ylabel(f"{key} {unit}")
        _spans(ax, [(max(e.start, lo), min(e.end, hi)) for e in episodes], "#ffcccc", 0.4)
        for at in lines:
            ax.axvline(_dates(np.array([at]))[0], color="#cc3311", ls=":")
        for shade, spans in shades.items():
            _spans(ax, spans, shade, 0.6)
        for at in pages:
            ax.axvline(_dates(np.array([at]))[0], color="k", lw=0.8)
    axes[0].set_title(f"{patient}: {why} (red: episode; grey/yellow/blue/orange/violet: "
                      "probe off/motion/patch off/blanket/offline; black: pages)", fontsize=8)
    axes[0].axhline(38.0, color="#cc3311", lw=0.5, ls="--")
    axes[2].axhline(93.0, color="#009988", lw=0.5, ls="--")
    axes[2].xaxis.set_major_formatter(mdates.DateFormatter("%d %b %H:%M"))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
