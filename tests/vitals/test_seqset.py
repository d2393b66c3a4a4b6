"""`SeqSet.add_newer`: a run of newer seqs at once is remembered as adding each would."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vitals.seqset import SeqSet


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=12), st.lists(st.integers(0, 3), max_size=40),
       st.integers(0, 5), st.integers(1, 6))
def test_a_run_of_newer_seqs_is_remembered_as_adding_each(
        seen: list[int], steps: list[int], gap: int, max_ranges: int) -> None:
    one, run = SeqSet(max_ranges), SeqSet(max_ranges)
    for seq in seen:
        one.add(seq)
        run.add(seq)
    start = (one.ends[-1] if one.ends else 0) + gap
    seqs = np.cumsum([start, *steps]).astype(np.int64)
    newer = bool(not one.ends or seqs[0] > one.ends[-1]) and bool((np.diff(seqs) > 0).all())
    assert run.add_newer(seqs) is newer
    if newer:
        for seq in seqs.tolist():
            assert one.add(seq)
    assert (run.starts, run.ends) == (one.starts, one.ends)  # unchanged when not newer
