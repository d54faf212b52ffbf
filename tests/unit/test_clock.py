from fractions import Fraction

import pytest
from drishti_stream.clock import FrameClock, source_index


def test_frames_are_due_on_the_wall_clock_from_the_epoch():
    clock = FrameClock(epoch=1000.0, fps=30)
    assert clock.due(0) == 1000.0
    assert clock.due(30) == pytest.approx(1001.0)
    assert clock.latest_due(1001.0) == 30
    assert clock.latest_due(1001.0 + 1 / 30 - 1e-6) == 30
    assert clock.latest_due(999.0) == 0


@pytest.mark.parametrize(("frame_id", "expected"), [(0, 0), (1, 3), (99, 297), (100, 0), (101, 3)])
def test_a_lower_rate_takes_every_nth_source_frame_and_wraps(frame_id, expected):
    assert source_index(frame_id, output_fps=10, native_fps=Fraction(30), length=300, loop=True) == expected


def test_a_higher_rate_repeats_source_frames_by_time():
    shown = [source_index(k, output_fps=30, native_fps=Fraction(10), length=20, loop=True) for k in range(7)]
    assert shown == [0, 0, 0, 1, 1, 1, 2]


def test_ntsc_rates_resample_exactly():
    native = Fraction(30000, 1001)
    assert source_index(30_000, 30, native, length=10**9, loop=True) == 29_970


def test_without_loop_the_last_frame_holds():
    assert [source_index(k, 10, Fraction(10), 5, loop=False) for k in (3, 4, 5, 500)] == [3, 4, 4, 4]


def test_a_realistic_epoch_counts_from_itself():
    clock = FrameClock(epoch=1_700_000_000.25, fps=30)
    assert clock.latest_due(1_700_000_002.75) == 75
    assert clock.due(75) == pytest.approx(1_700_000_002.75)


def test_without_loop_an_even_length_holds_its_last_frame_too():
    assert [source_index(k, 10, Fraction(10), 6, loop=False) for k in (5, 6, 60)] == [5, 5, 5]


def test_the_clock_cannot_be_changed_once_made():
    """Replicas agree because the epoch and rate are fixed for the life of a camera."""
    import dataclasses

    clock = FrameClock(epoch=1000.0, fps=30)
    with pytest.raises(dataclasses.FrozenInstanceError):
        clock.epoch = 2000.0  # type: ignore[misc]
