"""The lower per-client rate as a pure function of frame ids."""

import pytest
from drishti_stream.broadcast import ClientRate


def admitted(rate: ClientRate, frame_ids) -> list[int]:
    return [frame_id for frame_id in frame_ids if rate.admits(frame_id)]


def test_a_divisor_of_the_camera_rate_takes_every_nth_frame():
    assert admitted(ClientRate(10, 30), range(13)) == [0, 3, 6, 9, 12]


def test_any_other_rate_takes_the_first_frame_at_or_after_each_deadline():
    # deadlines at s/7 s; frames at k/30 s: the first frame of period s is ceil(30 s / 7)
    assert admitted(ClientRate(7, 30), range(31)) == [0, 5, 9, 13, 18, 22, 26, 30]


def test_a_client_joining_mid_period_waits_for_its_next_deadline():
    assert admitted(ClientRate(10, 30), range(1000, 1008)) == [1002, 1005]


def test_frames_the_camera_skipped_are_caught_up_with_the_next_one():
    assert admitted(ClientRate(10, 30), [0, 1, 2, 4, 5, 7, 8, 9]) == [0, 4, 7, 9]


@pytest.mark.parametrize("value, expected", [(None, None), ("30", None), ("1", 1), ("29", 29)])
def test_parse_gives_a_rate_only_below_the_cameras(value, expected):
    rate = ClientRate.parse(value, 30)
    assert (rate.fps if rate else None) == expected


@pytest.mark.parametrize("value", ["0", "31", "-3", "", "ten", "2.5", "x" * 200, "\U0001f600" * 40])
def test_parse_names_the_range(value):
    expected = r"^fps must be an integer from 1 to 30 \(the camera's rate\), got '"
    with pytest.raises(ValueError, match=expected) as error:
        ClientRate.parse(value, 30)
    assert len(str(error.value).encode()) <= 123  # it is sent as a WebSocket close reason


@pytest.mark.parametrize(("value", "shown"), [
    ("0", "'0'"),
    ("x" * 22, "'" + "x" * 22 + "'"),  # 24 characters quoted: shown whole
    ("x" * 23, "'" + "x" * 20 + "..."),  # 25: cut to 24 with an ellipsis
    ("x" * 200, "'" + "x" * 20 + "..."),
    ("\u00e9t\u00e9", "'\\xe9t\\xe9'"),  # ASCII only
])
def test_the_refused_value_is_quoted_in_at_most_24_ascii_characters(value, shown):
    with pytest.raises(ValueError) as error:
        ClientRate.parse(value, 30)
    assert str(error.value) == f"fps must be an integer from 1 to 30 (the camera's rate), got {shown}"
