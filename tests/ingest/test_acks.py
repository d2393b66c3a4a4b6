"""`InOrderAcks`: a PUBACK leaves only once every record of its message is on Kafka, and PUBACKs
leave in the order the messages arrived."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.acks import InOrderAcks, Ticket


def recorder() -> tuple[InOrderAcks, list[tuple[int, int]]]:
    sent: list[tuple[int, int]] = []
    return InOrderAcks(lambda mid, qos: sent.append((mid, qos))), sent


def test_ack_only_after_every_record_is_done() -> None:
    acks, sent = recorder()
    t = acks.open(mid=1, qos=1, records=3)
    assert len(acks) == 1
    t.done()
    t.done()
    assert sent == [] and len(acks) == 1
    t.done()
    assert sent == [(1, 1)] and len(acks) == 0


def test_acks_leave_in_arrival_order_when_later_messages_complete_first() -> None:
    acks, sent = recorder()
    a = acks.open(1, 1, 1)
    b = acks.open(2, 1, 2)
    c = acks.open(3, 1, 1)
    c.done()
    b.done()
    b.done()
    assert sent == [] and len(acks) == 3  # all wait for the first
    a.done()
    assert sent == [(1, 1), (2, 1), (3, 1)] and len(acks) == 0


def test_a_completed_head_releases_only_up_to_the_next_pending_message() -> None:
    acks, sent = recorder()
    a, b, c, d = (acks.open(mid, 1, 1) for mid in (1, 2, 3, 4))
    b.done()
    d.done()
    a.done()
    assert sent == [(1, 1), (2, 1)] and len(acks) == 2
    c.done()
    assert sent == [(1, 1), (2, 1), (3, 1), (4, 1)]


def test_a_message_with_no_records_is_acked_at_once_if_nothing_is_before_it() -> None:
    acks, sent = recorder()
    acks.open(7, 1, 0)
    assert sent == [(7, 1)] and len(acks) == 0


def test_a_message_with_no_records_waits_for_the_ones_before_it() -> None:
    acks, sent = recorder()
    a = acks.open(1, 1, 1)
    acks.open(2, 1, 0)
    acks.open(3, 1, 0)
    assert sent == [] and len(acks) == 3
    a.done()
    assert sent == [(1, 1), (2, 1), (3, 1)]


def test_qos0_is_never_acked_and_does_not_block_the_others() -> None:
    acks, sent = recorder()
    a = acks.open(1, 0, 1)
    b = acks.open(2, 1, 1)
    acks.open(3, 0, 0)
    acks.open(4, 1, 0)
    b.done()
    assert sent == []  # still waiting for the QoS 0 message before it
    a.done()
    assert sent == [(2, 1), (4, 1)] and len(acks) == 0


def test_qos2_is_acked_with_its_qos() -> None:
    acks, sent = recorder()
    acks.open(5, 2, 1).done()
    assert sent == [(5, 2)]


def test_after_a_reconnect_pending_tickets_do_not_ack_but_keep_their_place() -> None:
    acks, sent = recorder()
    done_before = acks.open(1, 1, 1)
    done_before.done()
    assert sent == [(1, 1)]
    old_a = acks.open(2, 1, 1)
    old_b = acks.open(3, 1, 2)
    old_b.done()
    acks.reconnected()
    # the broker redelivers 2 and 3 (packet ids may be reused), then a new message 4
    new_2 = acks.open(2, 1, 0)  # the redelivered copy is a duplicate: no records
    new_3 = acks.open(3, 1, 0)
    new_4 = acks.open(4, 1, 1)
    new_4.done()
    assert sent == [(1, 1)] and len(acks) == 5  # all wait for the old first delivery
    old_b.done()
    assert sent == [(1, 1)]
    old_a.done()
    # the old tickets leave without a PUBACK, the new ones with one, in order
    assert sent == [(1, 1), (2, 1), (3, 1), (4, 1)] and len(acks) == 0
    assert isinstance(new_2, Ticket) and new_2.qos == 1 and new_3.qos == 1
    assert old_a.qos == 0 and old_b.qos == 0


def test_what_waits_and_when_a_message_was_last_handed_over() -> None:
    now = [100.0]
    acks = InOrderAcks(lambda _mid, _qos: None, clock=lambda: now[0])
    assert acks.waiting() == (0, None) and acks.last_acked is None
    a = acks.open(1, 1, 1, at=90.0)
    b = acks.open(2, 1, 1, at=95.0)
    b.done()  # done, but waits behind the first: not handed over yet
    assert acks.waiting() == (2, 90.0) and acks.last_acked is None
    now[0] = 101.0
    a.done()
    assert acks.waiting() == (0, None) and acks.last_acked == 101.0
    now[0] = 102.0
    acks.open(3, 1, 0, at=102.0)  # nothing to send (a duplicate): through at once
    assert acks.last_acked == 102.0


def test_reconnect_with_nothing_pending_changes_nothing() -> None:
    acks, sent = recorder()
    acks.reconnected()
    acks.open(1, 1, 1).done()
    assert sent == [(1, 1)]


def test_records_done_from_other_threads() -> None:
    acks, sent = recorder()
    tickets = [acks.open(mid, 1, 20) for mid in range(50)]
    work = [t for t in tickets for _ in range(20)]

    def run(part: list[Ticket]) -> None:
        for t in part:
            t.done()

    threads = [threading.Thread(target=run, args=(work[i::4],)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sent == [(mid, 1) for mid in range(50)] and len(acks) == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1]), st.integers(0, 3)), max_size=15),
       st.data())
def test_any_completion_order_acks_each_qos1_message_once_in_arrival_order(
        messages: list[tuple[int, int]], data: st.DataObject) -> None:
    acks, sent = recorder()
    tickets = [acks.open(mid, qos, n) for mid, (qos, n) in enumerate(messages)]
    work = data.draw(st.permutations([t for t in tickets for _ in range(t.remaining)]))
    for t in work:
        t.done()
        # at any moment, what was acked is a prefix of the QoS 1 messages whose records,
        # and those of every message before them, are all done
        prefix = 0
        while prefix < len(tickets) and tickets[prefix].remaining == 0:
            prefix += 1
        assert sent == [(m, 1) for m, (q, _) in enumerate(messages[:prefix]) if q == 1]
    assert sent == [(mid, 1) for mid, (qos, _) in enumerate(messages) if qos == 1]
    assert len(acks) == 0
