"""The camera's loop on the frame clock: which frame ids it publishes, when, and what it counts."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from drishti_stream.camera import Camera, Frame
from drishti_stream.settings import Settings
from drishti_stream.sources.synthetic import SyntheticSource
from prometheus_client import REGISTRY


class Enough(Exception):
    """Ends a camera's endless loop from its publish callback."""


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def run(camera: Camera, publish, wants_meta=lambda: False, timeout: float = 5) -> None:
    async def main():
        with pytest.raises(Enough):
            await asyncio.wait_for(camera.run(publish, wants_meta), timeout)

    try:
        asyncio.run(main())
    finally:
        camera.close()


class FakeNow:
    """The camera's clock seam: time stands still unless the test moves it."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(("resumed_at", "ids", "skipped"), [
    (7, [2, 3, 4, 7, 8], 2),
    (8, [2, 3, 4, 8, 9], 3),
    (12, [2, 3, 4, 12, 13], 7),  # a stall longer than the camera has run so far
    (5, [2, 3, 4, 5, 6], 0),  # a stall within a frame period skips nothing
])
def test_a_camera_that_falls_behind_skips_ids_to_stay_on_the_wall_clock_and_counts_them(resumed_at, ids,
                                                                                       skipped):
    now = FakeNow(1000.25)  # started between frames 2 and 3 of a camera whose epoch is 1000
    camera = Camera(Settings(fps=10, epoch=1000.0), SyntheticSource(160, 120), now=now)
    produced_before = sample("drishti_frames_produced_total")
    skipped_before = sample("drishti_frames_skipped_total")
    published: list[Frame] = []

    def publish(frame: Frame) -> None:
        if len(published) == 5:
            raise Enough
        published.append(frame)
        # on time for the next frame, except for a stall after frame 4 until frame `resumed_at` is overdue
        due = camera.clock.due
        now.t = due(resumed_at) + 0.05 if frame.frame_id == 4 else due(frame.frame_id + 1)

    run(camera, publish)
    assert [frame.frame_id for frame in published] == ids
    assert [frame.timestamp for frame in published] == [camera.clock.due(k) for k in ids]
    assert (camera.produced, camera.skipped) == (5, skipped)
    assert sample("drishti_frames_produced_total") == produced_before + 5
    assert sample("drishti_frames_skipped_total") == skipped_before + skipped
    assert camera.latest is not None and camera.latest.frame_id == ids[-1] + 1  # the frame being published


def test_extended_metadata_is_produced_for_the_frames_made_while_a_client_asks():
    now = FakeNow(1000.0)
    camera = Camera(Settings(fps=10, epoch=1000.0), SyntheticSource(160, 120), now=now)
    asked = iter([False, True, True, False, True])
    published: list[Frame] = []

    def publish(frame: Frame) -> None:
        published.append(frame)
        now.t = camera.clock.due(frame.frame_id + 1)
        if len(published) == 5:
            raise Enough

    run(camera, publish, wants_meta=lambda: next(asked))
    assert [frame.meta_message is not None for frame in published] == [False, True, True, False, True]


def test_frames_are_published_at_their_due_time_never_before():
    before = time.time()
    camera = Camera(Settings(fps=20), SyntheticSource(160, 120))  # the epoch is now
    after = time.time()
    published: list[tuple[Frame, float]] = []

    def publish(frame: Frame) -> None:
        published.append((frame, time.time()))
        if len(published) == 4:
            raise Enough

    run(camera, publish, timeout=2)
    assert before <= camera.clock.epoch <= after
    ids = [frame.frame_id for frame, _ in published]
    assert ids[0] == 0 and ids == sorted(set(ids))
    for frame, at in published:
        assert frame.timestamp == camera.clock.due(frame.frame_id)
        assert at >= frame.timestamp
    assert published[-1][1] - camera.clock.epoch >= 3 / 20  # paced: three frame periods for four frames


def test_closing_the_camera_closes_its_source():
    closed = []
    source = SyntheticSource(160, 120)
    source.close = lambda: closed.append(True)  # type: ignore[method-assign]
    camera = Camera(Settings(fps=10, epoch=1000.0), source)
    camera.close()
    assert closed == [True]


def test_closing_waits_for_the_frame_being_read_before_closing_the_source():
    events: list[str] = []
    reading, release = threading.Event(), threading.Event()

    class SlowSource(SyntheticSource):
        def read(self, index: int):
            reading.set()
            release.wait(5)
            events.append("read")
            return super().read(index)

        def close(self) -> None:
            events.append("closed")

    camera = Camera(Settings(fps=10, epoch=1000.0), SlowSource(160, 120))

    async def main():
        producer = asyncio.ensure_future(camera.run(lambda frame: None, lambda: False))
        await asyncio.get_running_loop().run_in_executor(None, reading.wait, 5)
        closer = threading.Thread(target=camera.close)
        closer.start()
        await asyncio.sleep(0.1)  # close() is waiting for the read in progress
        events.append("released")
        release.set()
        await asyncio.get_running_loop().run_in_executor(None, closer.join, 5)
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)

    asyncio.run(main())
    assert events == ["released", "read", "closed"]
