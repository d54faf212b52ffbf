"""Every way a camera can be misconfigured fails at start: non-zero exit and one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.camera import run_camera_once

BAD_SETTINGS = [
    ({"DRISHTI_FPS": "0"}, ["video.fps", "DRISHTI_FPS", "'0'", "from 1 to 120"]),
    ({"DRISHTI_FPS": "500"}, ["video.fps", "'500'", "from 1 to 120"]),
    ({"DRISHTI_JPEG_QUALITY": "0"}, ["video.jpeg_quality", "DRISHTI_JPEG_QUALITY", "from 1 to 100"]),
    ({"DRISHTI_JPEG_QUALITY": "101"}, ["video.jpeg_quality", "'101'", "from 1 to 100"]),
    ({"DRISHTI_PORT": "eighty"}, ["server.port", "'eighty'", "an integer from 1 to 65535"]),
    ({"PORT": "99999"}, ["server.port", "99999", "from 1 to 65535"]),
    ({"DRISHTI_LOOP": "sometimes"}, ["video.loop", "true or false"]),
    ({"DRISHTI_LOG_FORMAT": "xml"}, ["logging.format", "one of json, text"]),
    ({"DRISHTI_SEND_TIMEOUT": "0"}, ["server.send_timeout", "from 0.1 to 300"]),
    ({"DRISHTI_VIDEO_PATH": "synthetic:10x10"},
     ["video.path", "'synthetic:10x10'", "from 160x120 to 7680x4320"]),
    ({"DRISHTI_VIDEO_PATH": "synthetic:"}, ["video.path", "synthetic:WIDTHxHEIGHT"]),
    ({"DRISHTI_EPOCH": "1e308"}, ["stream.epoch", "DRISHTI_EPOCH", "at most 253402300799"]),
    ({"DRISHTI_CONFIG": "missing.yaml"}, ["DRISHTI_CONFIG=missing.yaml", "no such config file"]),
]


def assert_one_clear_line(result, expected: list[str]) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for part in expected:
        assert part in lines[0], lines[0]


@pytest.mark.parametrize(("env", "expected"), BAD_SETTINGS, ids=[str(e) for e, _ in BAD_SETTINGS])
def test_an_invalid_setting_names_the_setting_value_and_range(tmp_path, env, expected):
    assert_one_clear_line(run_camera_once(tmp_path, **env), expected)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("video:\n  fps: [1\n", ["config.yaml", "invalid YAML", "line"]),
        ("video:\n  fps: 30\n  speed: 2\n", ["config.yaml", "unknown key 'video.speed'", "video.fps"]),
        ("video:\n  jpeg_quality: 101\n", ["video.jpeg_quality", "101", "from 1 to 100"]),
        ("- just\n- a list\n", ["config.yaml", "expected a mapping"]),
    ],
    ids=["bad-yaml", "unknown-key", "out-of-range", "not-a-mapping"],
)
def test_a_bad_config_file_is_reported(tmp_path, config, expected):
    (tmp_path / "config.yaml").write_text(config)
    assert_one_clear_line(run_camera_once(tmp_path), expected)


def test_a_missing_video_fails_fast(tmp_path):
    result = run_camera_once(tmp_path, DRISHTI_VIDEO_PATH="/nonexistent/crowd.mp4")
    assert_one_clear_line(result, ["/nonexistent/crowd.mp4", "no such video file"])


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40],
                         ids=["empty", "garbage-mp4"])
def test_a_corrupt_video_fails_fast(tmp_path: Path, content: bytes):
    video = tmp_path / "broken.mp4"
    video.write_bytes(content)
    result = run_camera_once(tmp_path, DRISHTI_VIDEO_PATH=str(video))
    assert_one_clear_line(result, ["broken.mp4", "not a readable video"])


def test_a_video_with_no_decodable_frame_fails_fast(tmp_path: Path, short_video: Path):
    video = tmp_path / "zeroed.mp4"
    data = short_video.read_bytes()
    mdat, moov = data.find(b"mdat"), data.find(b"moov")
    assert 0 < mdat < moov, "OpenCV's MP4 writer puts the frame data before the index"
    # the index (moov) intact, the frame data (mdat) zeroed: the file opens, but no frame decodes
    video.write_bytes(data[:mdat + 4] + bytes(moov - mdat - 8) + data[moov - 4:])
    result = run_camera_once(tmp_path, DRISHTI_VIDEO_PATH=str(video))
    assert_one_clear_line(result, ["zeroed.mp4", "no decodable first frame"])
