"""The fan-out policy in-process, with a fake writer in place of a socket: who gets which frame, and when."""

from __future__ import annotations

import asyncio
import time

import pytest
from drishti_stream.broadcast import Broadcaster, ClientRate, Subscriber, wants_meta
from drishti_stream.camera import Frame
from drishti_stream.wire import text_frame
from prometheus_client import REGISTRY


def frame(frame_id: int, meta: bool = False, age: float = 0.0) -> Frame:
    message = f'{{"frame_id": {frame_id}}}'
    extended = f'{{"frame_id": {frame_id}, "meta": {{}}}}' if meta else None
    return Frame(frame_id, time.time() - age, frame_id, b"", message, text_frame(message.encode()),
                 extended, text_frame(extended.encode()) if extended else None)


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


class FakeSocket:
    """`write_now` as the server offers it: takes a frame's wire bytes while it has room."""

    def __init__(self, room: bool = True) -> None:
        self.room = room
        self.written: list[bytes] = []

    def write_now(self, wire: bytes) -> bool:
        if self.room:
            self.written.append(wire)
        return self.room


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 5))


def test_a_client_that_keeps_up_gets_every_frame_at_once_without_its_writer():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        socket = FakeSocket()
        with broadcaster.subscribe("a", "websocket", socket.write_now) as subscriber:
            for frame_id in range(5):
                broadcaster.publish(frame(frame_id))
            return socket.written, subscriber.dropped, subscriber._ready.is_set()

    written, dropped, writer_woken = run(scenario())
    assert written == [frame(i).wire for i in range(5)]
    assert dropped == 0 and not writer_woken


def test_a_full_socket_leaves_the_newest_frame_in_the_slot_and_counts_the_older_as_dropped():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        socket = FakeSocket(room=False)
        with broadcaster.subscribe("slow", "websocket", socket.write_now) as subscriber:
            for frame_id in range(4):
                broadcaster.publish(frame(frame_id))
            taken = await subscriber.next_frame()
            return socket.written, subscriber.dropped, taken.frame_id

    written, dropped, taken = run(scenario())
    assert written == [] and dropped == 3 and taken == 3


def test_while_the_writer_holds_a_frame_newer_ones_wait_in_the_slot_so_order_is_kept():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        socket = FakeSocket(room=False)
        with broadcaster.subscribe("a", "websocket", socket.write_now) as subscriber:
            broadcaster.publish(frame(0))  # the socket is full: to the slot
            first = await subscriber.next_frame()  # the writer is sending it
            socket.room = True  # the socket drains meanwhile
            broadcaster.publish(frame(1))  # and yet frame 1 must not overtake frame 0
            written_while_holding = list(socket.written)
            second = await subscriber.next_frame()
            waiting = asyncio.ensure_future(subscriber.next_frame())  # done with frame 1, the writer waits
            await asyncio.sleep(0)
            broadcaster.publish(frame(2))  # an idle writer and an empty slot: written at once
            waiting.cancel()
            return first.frame_id, written_while_holding, second.frame_id, socket.written

    assert run(scenario()) == (0, [], 1, [frame(2).wire])


def test_one_clients_full_socket_costs_another_nothing():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        stalled, healthy = FakeSocket(room=False), FakeSocket()
        with broadcaster.subscribe("stalled", "websocket", stalled.write_now) as slow, \
                broadcaster.subscribe("healthy", "websocket", healthy.write_now):
            for frame_id in range(10):
                broadcaster.publish(frame(frame_id))
            return len(healthy.written), slow.dropped

    assert run(scenario()) == (10, 9)


def test_a_lower_rate_offers_the_slot_only_the_clients_frames():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        socket = FakeSocket()
        with broadcaster.subscribe("a", "websocket", socket.write_now, rate=ClientRate(10, 30)):
            for frame_id in range(9):
                broadcaster.publish(frame(frame_id))
        return socket.written

    assert run(scenario()) == [frame(i).wire for i in (0, 3, 6)]


def test_metadata_is_produced_only_while_a_client_asks_and_sent_only_to_it():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        plain, extended = FakeSocket(), FakeSocket()
        wanted = [broadcaster.wants_meta()]
        with broadcaster.subscribe("plain", "websocket", plain.write_now):
            with broadcaster.subscribe("meta", "websocket", extended.write_now, meta=True):
                wanted.append(broadcaster.wants_meta())
                broadcaster.publish(frame(0))  # produced before metadata was asked for: not for this client
                broadcaster.publish(frame(1, meta=True))
            wanted.append(broadcaster.wants_meta())
        return wanted, plain.written, extended.written

    wanted, plain, extended = run(scenario())
    assert wanted == [False, True, False]
    assert plain == [frame(0).wire, frame(1).wire]
    assert extended == [frame(1, meta=True).meta_wire]


def test_subscribers_are_counted_while_subscribed_and_forgotten_after():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        counts = [broadcaster.clients]
        with broadcaster.subscribe("a", "websocket"), broadcaster.subscribe("b", "mjpeg"):
            counts.append(broadcaster.clients)
        counts.append(broadcaster.clients)
        broadcaster.publish(frame(0))  # nobody to offer it to
        return counts

    assert run(scenario()) == [0, 2, 0]


def test_a_consumer_without_write_now_reads_the_newest_frames_through_its_iterator():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        frames = broadcaster.frames("viewer", "mjpeg")
        first = asyncio.ensure_future(anext(frames))
        await asyncio.sleep(0)  # subscribed, waiting for a frame
        broadcaster.publish(frame(0))
        taken = [(await first).frame_id]
        for frame_id in (1, 2, 3):  # published while the consumer is busy: only the newest is kept
            broadcaster.publish(frame(frame_id))
        taken.append((await anext(frames)).frame_id)
        await frames.aclose()
        return taken, broadcaster.clients

    assert run(scenario()) == ([0, 3], 0)


def test_a_subscriber_alone_holds_at_most_one_frame():
    async def scenario():
        subscriber = Subscriber("alone")
        for frame_id in range(3):
            subscriber.offer(frame(frame_id))
        return (await subscriber.next_frame()).frame_id, subscriber.dropped

    assert run(scenario()) == (2, 2)


def test_a_slow_clients_drops_are_counted_under_its_name_until_it_leaves():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        stalled, healthy = FakeSocket(room=False), FakeSocket()
        counted = []
        with broadcaster.subscribe("drops-slow", "websocket", stalled.write_now), \
                broadcaster.subscribe("drops-fast", "websocket", healthy.write_now):
            for frame_id in range(4):
                broadcaster.publish(frame(frame_id))
                counted.append(sample("drishti_client_frames_dropped_total", client="drops-slow"))
            counted.append(sample("drishti_client_frames_dropped_total", client="drops-fast"))
        counted.append(sample("drishti_client_frames_dropped_total", client="drops-slow"))
        return counted

    # the first frame waits in the slot; each newer one drops the one before; gone with the client
    assert run(scenario()) == [None, 1.0, 2.0, 3.0, None, None]


def test_connected_clients_are_counted_by_kind():
    def connected(kind: str) -> float:
        return sample("drishti_clients_connected", kind=kind) or 0.0

    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        before = connected("websocket"), connected("mjpeg")
        counts = []
        with broadcaster.subscribe("k1", "websocket"), broadcaster.subscribe("k2", "websocket"):
            with broadcaster.subscribe("k3", "mjpeg"):
                counts.append((connected("websocket") - before[0], connected("mjpeg") - before[1]))
            counts.append((connected("websocket") - before[0], connected("mjpeg") - before[1]))
        counts.append((connected("websocket") - before[0], connected("mjpeg") - before[1]))
        return counts

    assert run(scenario()) == [(2, 1), (2, 0), (0, 0)]


def test_the_send_lag_of_a_frame_written_at_once_is_its_age_observed_once_for_all_clients_written():
    async def scenario():
        broadcaster = Broadcaster(send_timeout=5, max_clients=10)
        count, total = (sample("drishti_send_lag_seconds_count") or 0.0,
                        sample("drishti_send_lag_seconds_sum") or 0.0)
        full = FakeSocket(room=False)
        with broadcaster.subscribe("lag", "websocket", FakeSocket().write_now), \
                broadcaster.subscribe("lag-too", "websocket", FakeSocket().write_now), \
                broadcaster.subscribe("lag-full", "websocket", full.write_now):
            broadcaster.publish(frame(0, age=2.0))  # written at once to two clients, to the slot of the third
        return (sample("drishti_send_lag_seconds_count") - count,
                sample("drishti_send_lag_seconds_sum") - total)

    count, lag = run(scenario())
    assert count == 1 and 2.0 <= lag < 2.5


@pytest.mark.parametrize(("query", "expected"), [
    ({}, False), ({"meta": "0"}, False), ({"meta": "1"}, True), ({"fps": "1"}, False),
])
def test_extended_metadata_is_asked_for_with_meta_1(query, expected):
    assert wants_meta(query) is expected


@pytest.mark.parametrize(("value", "shown"), [
    ("yes", "'yes'"), ("", "''"), ("2", "'2'"), ("true", "'true'"), ("00", "'00'"),
])
def test_any_other_meta_value_is_refused_with_the_allowed_ones(value, shown):
    with pytest.raises(ValueError) as error:
        wants_meta({"meta": value})
    assert str(error.value) == f"meta must be 0 or 1 (1: extended metadata in every message), got {shown}"
