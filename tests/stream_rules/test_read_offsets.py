"""The worker turns off Faust's read-offset filter for its input topics (a seek back to the
states' position must not be undone by records fetched before it), and only for those."""

from __future__ import annotations

from pathlib import Path

from faust.types import TP

from stream_rules.faust_app import INPUTS, new_app
from stream_rules.read_offsets import InputsUnfiltered
from vitals.settings import Settings


def delivered(read_offsets: dict[TP, int | None], tp: TP, offset: int) -> bool:
    """Faust's test in `Consumer._drain_messages`, then its update of the mark."""
    mark = read_offsets[tp]
    if mark is None or offset >= mark:
        read_offsets[tp] = offset
        return True
    return False


def test_after_a_seek_back_the_input_records_come_again_and_the_changelogs_are_filtered() -> None:
    readings, changelog = TP(INPUTS[0], 2), TP("vitals-rules-patient-state-changelog", 2)
    faust_own: dict[TP, int | None] = {changelog: 40}
    marks = InputsUnfiltered(INPUTS, faust_own)
    # records fetched before the seek went through (offsets 5901..5950), then the seek back
    # to 5107: Faust's own mark would drop 5107..5950
    assert all(delivered(marks, readings, offset) for offset in range(5901, 5951))
    assert all(delivered(marks, readings, offset) for offset in range(5107, 5200))
    assert [delivered(marks, changelog, o) for o in (39, 40, 41)] == [False, True, True]
    assert marks[changelog] == 41 and marks[TP(INPUTS[1], 0)] is None
    plain: dict[TP, int | None] = {readings: 5950}
    assert not delivered(plain, readings, 5107)  # what the worker had before


def test_the_consumer_has_the_filter_from_its_creation(tmp_path: Path) -> None:
    """Not at the first rebalance: a worker with states to restore starts Faust's fetcher
    (which binds the mapping's `__getitem__` once) to read the changelog before then. Installed
    there, the filter stayed Faust's own on every restarted worker, and the short chaos run
    stalled two patients in CI."""
    settings = Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]
    consumer = new_app(settings).consumer
    get_read_offset = consumer._read_offset.__getitem__  # what the fetcher binds
    consumer._read_offset[TP(INPUTS[0], 1)] = 5950
    consumer._read_offset[TP("vitals-rules-patient-state-changelog", 1)] = 40
    assert get_read_offset(TP(INPUTS[0], 1)) is None
    assert get_read_offset(TP("vitals-rules-patient-state-changelog", 1)) == 40
