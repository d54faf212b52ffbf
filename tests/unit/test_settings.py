from pathlib import Path
from typing import get_args

import pytest
from drishti_stream import protocol
from drishti_stream.settings import Settings, SettingsError, env_name, load_settings, yaml_key
from pydantic import ValidationError

pytestmark = pytest.mark.usefixtures("clean_env")  # tests/unit/conftest.py


def test_defaults_run_the_synthetic_camera():
    settings = load_settings()
    assert (settings.video_path, settings.fps, settings.loop, settings.jpeg_quality) == (
        "synthetic", None, True, 85)
    assert (settings.port, settings.send_timeout, settings.cache_budget_mb) == (8000, 5.0, 2048)


def test_config_file_overrides_defaults_and_env_overrides_the_file(monkeypatch):
    Path("config.yaml").write_text("video:\n  fps: 12\n  jpeg_quality: 70\nserver:\n  port: 9000\n")
    monkeypatch.setenv("DRISHTI_FPS", "24")
    settings = load_settings()
    assert (settings.fps, settings.jpeg_quality, settings.port) == (24, 70, 9000)


def test_port_precedence_is_drishti_port_then_port_then_config_file(monkeypatch):
    Path("config.yaml").write_text("server:\n  port: 9000\n")
    assert load_settings().port == 9000
    monkeypatch.setenv("PORT", "8080")
    assert load_settings().port == 8080
    monkeypatch.setenv("DRISHTI_PORT", "8081")
    assert load_settings().port == 8081


def test_drishti_config_names_the_file(monkeypatch, tmp_path):
    (tmp_path / "cam.yaml").write_text("stream:\n  name: gate\n")
    monkeypatch.setenv("DRISHTI_CONFIG", str(tmp_path / "cam.yaml"))
    assert load_settings().name == "gate"


def test_every_field_has_a_yaml_key_env_name_and_description():
    for field, info in Settings.model_fields.items():
        section, key = yaml_key(field).split(".")
        assert section in {"stream", "video", "server", "logging", "cache"} and key
        assert env_name(field).startswith("DRISHTI_") and info.description


def test_the_error_line_names_setting_value_and_range(monkeypatch):
    monkeypatch.setenv("DRISHTI_MAX_CLIENTS", "0")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == ("invalid setting server.max_clients (DRISHTI_MAX_CLIENTS) = '0': "
                                "must be an integer from 1 to 100000")


def test_the_shipped_config_yaml_holds_the_defaults(monkeypatch):
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("DRISHTI_CONFIG", str(repo / "config.yaml"))
    assert load_settings() == Settings.model_construct(**{
        name: info.get_default(call_default_factory=True) for name, info in Settings.model_fields.items()})


def test_the_shipped_config_yaml_documents_every_setting():
    text = (Path(__file__).resolve().parents[2] / "config.yaml").read_text()
    for field in Settings.model_fields:
        assert env_name(field) in text and yaml_key(field).split(".")[1] in text, field


def test_the_protocol_version_setting_is_the_protocol_spoken():
    assert get_args(Settings.model_fields["protocol_version"].annotation) == (protocol.VERSION,)
    with pytest.raises(SettingsError, match=r"stream.version .* = 'v0.9': must be v1.0, the only protocol"):
        load_settings(protocol_version="v0.9")


def test_words_are_accepted_in_any_case_and_refused_as_written():
    settings = load_settings(log_level=" WARNING", log_format="Json", protocol_version="V1.0", loop="FALSE")
    assert (settings.log_level, settings.log_format, settings.protocol_version, settings.loop) == \
        ("warning", "json", "v1.0", False)
    with pytest.raises(SettingsError, match=r"\(DRISHTI_LOG_LEVEL\) = 'LOUD': must be one of debug"):
        load_settings(log_level="LOUD")
    with pytest.raises(SettingsError, match="DRISHTI_NAME"):  # free text keeps its case and its checks
        load_settings(name="")
    assert load_settings(name="Gate-A").name == "Gate-A"


def test_an_empty_env_var_counts_as_unset(monkeypatch):
    """Templates (compose, a pod spec) often write `DRISHTI_X=`: the file's value or the default stays."""
    Path("config.yaml").write_text("video:\n  fps: 12\n")
    monkeypatch.setenv("DRISHTI_FPS", "")
    monkeypatch.setenv("DRISHTI_JPEG_QUALITY", "")
    settings = load_settings()
    assert (settings.fps, settings.jpeg_quality) == (12, 85)


def test_invalid_yaml_fails_naming_the_file_and_the_line(monkeypatch):
    Path("config.yaml").write_text("video:\n  fps: 12\n  loop: [true\nserver:\n  port: 9000\n")
    with pytest.raises(SettingsError, match=r"^config\.yaml: invalid YAML at line 4: expected ',' or ']'"):
        load_settings()


def test_with_several_invalid_settings_the_line_names_the_first_in_config_yaml_order(monkeypatch):
    monkeypatch.setenv("DRISHTI_MAX_CLIENTS", "0")
    monkeypatch.setenv("DRISHTI_PORT", "0")
    monkeypatch.setenv("DRISHTI_FPS", "0")
    with pytest.raises(SettingsError, match=r"^invalid setting video\.fps \(DRISHTI_FPS\) = '0': must be"):
        load_settings()


def test_settings_are_fixed_once_loaded():
    settings = load_settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.fps = 5  # type: ignore[misc]
    assert settings.fps is None
