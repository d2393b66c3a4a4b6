"""Where the worker's states stand in its input (`stream_rules.positions`), without Faust."""

from __future__ import annotations

import pytest

from stream_rules import positions as pos
from tests.hostile import variants

R, S = "vitals.readings", "vitals.status"


def test_records_before_the_position_and_of_partitions_not_held_are_not_judged() -> None:
    positions = pos.Positions()
    positions.start(R, 0, 100)
    assert positions.check(R, 0, 99) is pos.Verdict.SEEN  # the states have seen it
    assert positions.check(R, 1, 500) is pos.Verdict.NOT_HELD
    assert positions.check(R, 0, 100) is pos.Verdict.JUDGE
    assert positions.check(R, 0, 105) is pos.Verdict.JUDGE  # a gap, once judging has resumed
    assert positions.check(R, 0, 103) is pos.Verdict.SEEN
    assert positions.check(R, 0, 105) is pos.Verdict.SEEN
    assert positions.record(0) == {R: 106}


def test_a_consumer_that_resumed_past_the_position_is_sent_back() -> None:
    """Faust seeks to the committed offset; should that be past the position (the commit of
    the position failed), the records between must still be judged, in order."""
    positions = pos.Positions()
    positions.start(R, 0, 100)
    assert positions.check(R, 0, 140) is pos.Verdict.SEEK
    assert positions.check(R, 0, 141) is pos.Verdict.WAIT  # fetched before the seek took effect
    assert positions.check(R, 0, 100) is pos.Verdict.JUDGE
    assert positions.check(R, 0, 101) is pos.Verdict.JUDGE
    assert positions.next_offset(R, 0) == 102
    positions.start(R, 0, 200)  # assigned again: the first record must be the position's
    assert positions.check(R, 0, 201) is pos.Verdict.SEEK


def test_a_seek_back_still_waited_for_is_asked_again() -> None:
    """Should something undo the seek (Faust seeking to committed offsets past the position),
    waiting for ever would stall the partition: after `SEEK_AGAIN_S` the seek is asked again."""
    positions = pos.Positions()
    positions.start(R, 0, 100)
    assert positions.check(R, 0, 140, now=50.0) is pos.Verdict.SEEK
    assert positions.check(R, 0, 141, now=50.0 + pos.SEEK_AGAIN_S - 0.1) is pos.Verdict.WAIT
    assert positions.check(R, 0, 300, now=50.0 + pos.SEEK_AGAIN_S) is pos.Verdict.SEEK
    assert positions.check(R, 0, 301, now=50.0 + pos.SEEK_AGAIN_S) is pos.Verdict.WAIT
    assert positions.check(R, 0, 100, now=70.0) is pos.Verdict.JUDGE
    assert positions.check(R, 0, 302, now=99.0) is pos.Verdict.JUDGE  # resumed: a gap is fine


def test_a_position_names_both_inputs_of_its_partition_and_round_trips() -> None:
    positions = pos.Positions()
    for partition in (0, 1):
        positions.start(R, partition, 10 * partition)
        positions.start(S, partition, 0)
    assert positions.check(S, 1, 0) is pos.Verdict.JUDGE
    assert positions.check(S, 1, 7) is pos.Verdict.JUDGE
    record = positions.record(1)
    assert record == {R: 10, S: 8}
    assert pos.decode_position(pos.encode_position(record)) == record


def test_the_positions_to_write_are_those_moved_and_those_under_states_written() -> None:
    positions = pos.Positions()
    for partition in range(4):
        positions.start(R, partition, 0)
    assert positions.check(R, 2, 0) is pos.Verdict.JUDGE
    # partition 3: a state written without input (the live silence check); 7 is not held
    assert positions.take_moved([3, 3, 7, None]) == [2, 3]
    assert positions.take_moved([]) == []  # reset
    positions.forget()
    assert not positions.held(2) and positions.take_moved([2]) == []
    assert positions.check(R, 2, 1) is pos.Verdict.NOT_HELD


def test_position_keys_are_no_patient_id() -> None:
    assert pos.position_key(3) == "~position-3"
    assert pos.is_position_key(pos.position_key(0)) and pos.is_position_key("~end")
    assert not pos.is_position_key("P001")


HOSTILE = [raw for label, raw in variants({R: 5}) if label != f"{R}=0"]


@pytest.mark.parametrize("raw", [None, b"", b"{}", b"[]", b'{"vitals.readings": -1}',
                                 b'{"vitals.readings": 9223372036854775808}', b"\xff",
                                 *HOSTILE])
def test_a_position_that_cannot_be_read_is_none(raw: bytes | None) -> None:
    """None: the worker then starts the partition from its beginning (exact, if slow)."""
    assert pos.decode_position(raw) is None
