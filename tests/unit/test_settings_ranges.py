"""Every setting's accepted range, pinned at both edges: the value at a bound starts the camera, one step
beyond fails at start with the one line that names the setting, its env var, the value and what is allowed.

The tables below are the promise to users (README, config.yaml, the VirtualCamera schema), written out
rather than read back from the model, so a changed bound fails here; a new setting fails
`test_the_tables_cover_every_setting` until its range is written down.
"""

from pathlib import Path

import pytest
from drishti_stream.settings import Settings, SettingsError, load_settings

pytestmark = pytest.mark.usefixtures("clean_env")  # tests/unit/conftest.py


# field -> (env var, config.yaml key, lowest accepted, highest accepted, the error's wording of the range)
NUMBERS = {
    "fps": ("DRISHTI_FPS", "video.fps", 1, 120, "an integer from 1 to 120"),
    "jpeg_quality": ("DRISHTI_JPEG_QUALITY", "video.jpeg_quality", 1, 100, "an integer from 1 to 100"),
    "max_width": ("DRISHTI_MAX_WIDTH", "video.max_width", 16, 7680, "an integer from 16 to 7680"),
    "max_height": ("DRISHTI_MAX_HEIGHT", "video.max_height", 16, 4320, "an integer from 16 to 4320"),
    "port": ("DRISHTI_PORT", "server.port", 1, 65535, "an integer from 1 to 65535"),
    "send_timeout": ("DRISHTI_SEND_TIMEOUT", "server.send_timeout", 0.1, 300, "a number from 0.1 to 300"),
    "max_clients": ("DRISHTI_MAX_CLIENTS", "server.max_clients", 1, 100_000, "an integer from 1 to 100000"),
    "request_timeout": ("DRISHTI_REQUEST_TIMEOUT", "server.request_timeout", 0.1, 300,
                        "a number from 0.1 to 300"),
    "max_header_bytes": ("DRISHTI_MAX_HEADER_BYTES", "server.max_header_bytes", 1024, 1_048_576,
                         "an integer from 1024 to 1048576"),
    "ping_interval": ("DRISHTI_PING_INTERVAL", "server.ping_interval", 0.1, 3600,
                      "a number from 0.1 to 3600"),
    "ping_timeout": ("DRISHTI_PING_TIMEOUT", "server.ping_timeout", 0.1, 3600, "a number from 0.1 to 3600"),
    "cache_budget_mb": ("DRISHTI_CACHE_BUDGET_MB", "cache.budget_mb", 0, 65_536,
                        "an integer from 0 to 65536"),
}
# one step beyond a bound: the next integer, or for a number a step finer than anyone configures
STEP = {"send_timeout": 0.001, "request_timeout": 0.001, "ping_interval": 0.001, "ping_timeout": 0.001}

# field -> (env var, config.yaml key, values accepted, values refused, the error's wording for them)
LONGEST_URL = "http://" + "h" * 2041  # 2048 characters
OTHERS = {
    "name": ("DRISHTI_NAME", "stream.name", ["n", "n" * 63], ["", "n" * 64], "text of 1 to 63 characters"),
    "protocol_version": ("DRISHTI_PROTOCOL_VERSION", "stream.version", ["v1.0"], ["v2.0", "v1"],
                         "v1.0, the only protocol version this camera speaks"),
    "epoch": ("DRISHTI_EPOCH", "stream.epoch", [0.001, 1764000000.5, 253402300799.0],
              [0, -1, 253402300799.01, "1e308"],
              "a Unix time in seconds, above 0 and at most 253402300799 (9999-12-31T23:59:59Z)"),
    "video_path": ("DRISHTI_VIDEO_PATH", "video.path",
                   ["v", "synthetic", "synthetic:160x120", "synthetic:7680x4320", "synthetic:00640x0360",
                    "synthetics.mp4"],
                   ["", "synthetic:", "synthetic:159x120", "synthetic:160x119", "synthetic:7681x4320",
                    "synthetic:7680x4321", "synthetic:640x360x1", "synthetic:000640x360",
                    "synthetic:big"],
                   "a file path, gs://bucket/object, http(s)://... or `synthetic` or "
                   "`synthetic:WIDTHxHEIGHT` from 160x120 to 7680x4320"),
    "gcs_endpoint": ("DRISHTI_GCS_ENDPOINT", "video.gcs_endpoint", ["http://gcs:9023", LONGEST_URL],
                     ["gcs:9023", "ftp://gcs", LONGEST_URL + "h"], r"text matching ^https?://[^\s/]+"),
    "loop": ("DRISHTI_LOOP", "video.loop", ["false", "true"], ["maybe"], "true or false"),
    "host": ("DRISHTI_HOST", "server.host", ["h", "::"], [""], "Address to listen on."),
    "cache_dir": ("DRISHTI_CACHE_DIR", "cache.dir", ["/var/cache/drishti"], [["not", "a", "path"]],
                  "Directory for frame stores and downloaded gs:// and http(s):// videos."),
    "log_level": ("DRISHTI_LOG_LEVEL", "logging.level", ["debug", "critical"], ["loud", 3],
                  "one of debug, info, warning, error, critical"),
    "log_format": ("DRISHTI_LOG_FORMAT", "logging.format", ["json", "text"], ["xml"], "one of json, text"),
}


def write_config(key: str, value) -> None:
    section, name = key.split(".")
    Path("config.yaml").write_text(f"{section}:\n  {name}: {value!r}\n" if isinstance(value, str)
                                   else f"{section}:\n  {name}: {value}\n")


def test_the_tables_cover_every_setting():
    assert set(NUMBERS) | set(OTHERS) == set(Settings.model_fields)
    assert not set(NUMBERS) & set(OTHERS)


@pytest.mark.parametrize("field", NUMBERS)
def test_a_number_is_accepted_at_both_bounds_from_env_and_config_file(field, monkeypatch):
    env, key, low, high, _ = NUMBERS[field]
    for value in (low, high):
        monkeypatch.setenv(env, str(value))
        assert getattr(load_settings(), field) == value
        monkeypatch.delenv(env)
        write_config(key, value)
        assert getattr(load_settings(), field) == value


@pytest.mark.parametrize("field", NUMBERS)
def test_one_step_beyond_a_bound_is_refused_naming_setting_env_value_and_range(field, monkeypatch):
    env, key, low, high, wording = NUMBERS[field]
    step = STEP.get(field, 1)
    for value in (round(low - step, 3), round(high + step, 3)):
        monkeypatch.setenv(env, str(value))
        with pytest.raises(SettingsError) as from_env:
            load_settings()
        assert str(from_env.value) == f"invalid setting {key} ({env}) = '{value}': must be {wording}"
        monkeypatch.delenv(env)
        write_config(key, value)
        with pytest.raises(SettingsError) as from_file:
            load_settings()
        assert str(from_file.value) == f"invalid setting {key} ({env}) = {value!r}: must be {wording}"


@pytest.mark.parametrize("field", OTHERS)
def test_every_other_setting_accepts_its_values_and_refuses_others_in_one_line(field, monkeypatch):
    env, key, accepted, refused, wording = OTHERS[field]
    for value in accepted:
        monkeypatch.setenv(env, str(value))
        assert str(getattr(load_settings(), field)).lower() == str(value)
        monkeypatch.delenv(env)
        write_config(key, value)
        assert str(getattr(load_settings(), field)).lower() == str(value)
    for value in refused:
        write_config(key, value)
        with pytest.raises(SettingsError) as error:
            load_settings()
        assert str(error.value) == f"invalid setting {key} ({env}) = {value!r}: must be {wording}"
