"""Faust's consumer drops a record whose offset is below the last one it delivered for that
partition (`Consumer._read_offset`). After a rebalance, records fetched before it are still
being delivered: they push that mark past a seek back to the states' position, so the records
the seek asks for are dropped, and the partition stalls until its next rebalance (the short
chaos run saw it on a loaded machine: two patients never judged again). The worker's positions
(`stream_rules.positions`) already decide which input records to judge and which were seen, so
for the input topics the mark is turned off, from the moment the consumer is made
(`stream_rules.faust_app.RulesApp`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

__all__ = ["InputsUnfiltered"]


class InputsUnfiltered(defaultdict):
    """Faust's read offsets, reporting none for the input topics (every record is delivered
    and `Positions.check` judges it); other topics (the changelog) keep Faust's filter."""

    def __init__(self, topics: Collection[str], current: dict[Any, int | None]) -> None:
        super().__init__(lambda: None, current)
        self.topics = frozenset(topics)

    def __getitem__(self, tp: Any) -> int | None:
        if tp.topic in self.topics:
            return None
        return super().__getitem__(tp)
