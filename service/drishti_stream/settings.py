"""The one settings model of a camera: defaults < config.yaml < DRISHTI_* environment.

Every setting is declared once, here, with its range, its `config.yaml` key and its environment variable.
The service validates with it, and the operator derives the VirtualCamera schema and the pod's environment
from it, so the three can never disagree.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "DRISHTI_"
CONFIG_ENV = "DRISHTI_CONFIG"
DEFAULT_CONFIG_FILE = "config.yaml"
LATEST_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second RFC 3339 can write
SYNTHETIC_SIZED = r"^synthetic:([0-9]{1,5})x([0-9]{1,5})$"
SYNTHETIC_DEFAULT_SIZE = (1280, 720)
SYNTHETIC_SMALLEST = (160, 120)
SYNTHETIC_LARGEST = (7680, 4320)
SYNTHETIC_ALLOWED = ("`synthetic` or `synthetic:WIDTHxHEIGHT` from {}x{} to {}x{}"
                     .format(*SYNTHETIC_SMALLEST, *SYNTHETIC_LARGEST))


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "drishti"


def setting(default: Any, key: str, description: str, allowed: str | None = None, **kwargs: Any) -> Any:
    """A field with its dotted `config.yaml` key recorded next to its range and description; `allowed`
    words what an error says the field accepts, where its constraints alone would say it poorly."""
    extra: JsonDict = {"yaml_key": key}
    if allowed:
        extra["allowed"] = allowed
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


class Settings(BaseSettings):
    """Everything a camera can be told. Field names map to `DRISHTI_<NAME>` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
    )

    name: str = setting("drishti-stream", "stream.name", "Camera name shown on / and in logs.",
                        min_length=1, max_length=63)
    protocol_version: Literal["v1.0"] = setting(
        "v1.0", "stream.version", "Protocol version of the messages on /ws/stream.",
        allowed="v1.0, the only protocol version this camera speaks")
    epoch: float | None = setting(
        None, "stream.epoch",
        "Unix time of frame 0. Fix it to keep frame ids across restarts and replicas; unset = start time.",
        allowed=f"a Unix time in seconds, above 0 and at most {LATEST_EPOCH} (9999-12-31T23:59:59Z)",
        gt=0, le=LATEST_EPOCH)
    video_path: str = setting(
        "synthetic", "video.path",
        "Video to replay: a file path, gs://bucket/object, http(s)://..., or synthetic[:WxH].",
        allowed=f"a file path, gs://bucket/object, http(s)://... or {SYNTHETIC_ALLOWED}", min_length=1)
    gcs_endpoint: str | None = setting(
        None, "video.gcs_endpoint",
        "Endpoint of the Cloud Storage API for gs:// videos, e.g. an emulator's http://host:port (asked "
        "without credentials); unset = Google's.",
        pattern=r"^https?://[^\s/]+", max_length=2048)
    fps: int | None = setting(None, "video.fps", "Output frame rate; unset = the source's native rate.",
                              ge=1, le=120)
    loop: bool = setting(True, "video.loop", "Loop at the end of the video; false repeats the last frame.")
    jpeg_quality: int = setting(85, "video.jpeg_quality", "JPEG quality of every frame.", ge=1, le=100)
    max_width: int | None = setting(None, "video.max_width",
                                    "Downscale frames wider than this (keeps the aspect ratio).",
                                    ge=16, le=7680)
    max_height: int | None = setting(None, "video.max_height",
                                     "Downscale frames taller than this (keeps the aspect ratio).",
                                     ge=16, le=4320)
    host: str = setting("0.0.0.0", "server.host", "Address to listen on.", min_length=1)
    port: int = setting(8000, "server.port", "Port to listen on (PORT is honoured too, for Cloud Run).",
                        ge=1, le=65535)
    send_timeout: float = setting(5.0, "server.send_timeout",
                                  "Seconds a client may accept nothing before it is closed with 1013.",
                                  ge=0.1, le=300)
    max_clients: int = setting(1000, "server.max_clients", "Clients beyond this are refused with 1013.",
                               ge=1, le=100_000)
    request_timeout: float = setting(
        10.0, "server.request_timeout",
        "Seconds a connection may take to send a whole HTTP request (or WebSocket upgrade); slower ones get "
        "408 and are closed, so trickled headers (slowloris) and silent connections cannot hold sockets.",
        ge=0.1, le=300)
    max_header_bytes: int = setting(
        16_384, "server.max_header_bytes",
        "Largest HTTP request line and headers, in bytes; larger requests are refused with 400 unread.",
        ge=1024, le=1_048_576)
    ping_interval: float = setting(
        20.0, "server.ping_interval",
        "Seconds between keepalive pings to each WebSocket client, so a half-open connection (a client gone "
        "without a word) is found and its slot freed.",
        ge=0.1, le=3600)
    ping_timeout: float = setting(
        20.0, "server.ping_timeout",
        "Seconds a WebSocket client has to answer a keepalive ping before it is closed with 1011.",
        ge=0.1, le=3600)
    cache_budget_mb: int = setting(
        2048, "cache.budget_mb",
        "Disk for the video's frame store in cache.dir (its frames encoded once, for every loop, restart and "
        "replica); a video whose frames exceed it is encoded on every loop; 0 disables the store.",
        ge=0, le=65_536)
    cache_dir: Path = setting(_default_cache_dir(), "cache.dir",
                              "Directory for frame stores and downloaded gs:// and http(s):// videos.")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = setting(
        "info", "logging.level", "Log level.")
    log_format: Literal["json", "text"] = setting("json", "logging.format",
                                                  "json: one JSON object per line; text: plain lines.")

    @field_validator("*", mode="before")
    @classmethod
    def _choice_in_any_case(cls, value: Any, info: ValidationInfo) -> Any:
        """A choice among words (`INFO`, `Json`, `V1.0`) is accepted in any case, as people write them;
        anything else is left as written, for the error message."""
        annotation = cls.model_fields[str(info.field_name)].annotation
        if isinstance(value, str) and get_origin(annotation) is Literal:
            return next((word for word in get_args(annotation) if word == value.strip().lower()), value)
        return value

    @field_validator("video_path")
    @classmethod
    def _synthetic_size_in_range(cls, value: str) -> str:
        """A synthetic scene of a size the camera cannot draw fails here, at start, like any bad setting."""
        if is_synthetic(value):
            synthetic_size(value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, CloudRunPortSource(settings_cls), YamlFileSource(settings_cls)


def is_synthetic(video_path: str) -> bool:
    """`synthetic` and `synthetic:...` name the built-in scene; anything else is a video."""
    return video_path == "synthetic" or video_path.startswith("synthetic:")


def synthetic_size(video_path: str) -> tuple[int, int]:
    """The scene's (width, height) named by a synthetic video path; ValueError if it names none we draw."""
    if video_path == "synthetic":
        return SYNTHETIC_DEFAULT_SIZE
    match = re.match(SYNTHETIC_SIZED, video_path)
    width, height = (int(match[1]), int(match[2])) if match else (0, 0)
    if not (SYNTHETIC_SMALLEST[0] <= width <= SYNTHETIC_LARGEST[0]
            and SYNTHETIC_SMALLEST[1] <= height <= SYNTHETIC_LARGEST[1]):
        raise ValueError(f"{video_path}: expected {SYNTHETIC_ALLOWED}")
    return width, height


def yaml_key(field: str) -> str:
    """The dotted config.yaml key of a settings field."""
    extra = Settings.model_fields[field].json_schema_extra
    assert isinstance(extra, dict)
    return str(extra["yaml_key"])


def env_name(field: str) -> str:
    """The environment variable that sets a field (the prefixed one, where several are accepted)."""
    return f"{ENV_PREFIX}{field.upper()}"


class SettingsError(Exception):
    """An invalid setting: the message is the one line to print before exiting."""


class YamlFileSource(PydanticBaseSettingsSource):
    """Reads the nested config.yaml and maps its dotted keys onto the flat settings fields."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._values = _read_config_file()

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


class CloudRunPortSource(PydanticBaseSettingsSource):
    """`PORT`, as Cloud Run and similar platforms set it: below DRISHTI_PORT, above config.yaml."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return os.environ.get("PORT") if field_name == "port" else None, field_name, False

    def __call__(self) -> dict[str, Any]:
        port = os.environ.get("PORT")
        return {"port": port} if port else {}


def _config_path() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise SettingsError(f"{CONFIG_ENV}={named}: no such config file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_config_file() -> dict[str, Any]:
    path = _config_path()
    if path is None:
        return {}
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SettingsError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: expected a mapping of sections (stream, video, server, ...)")
    by_key = {yaml_key(name): name for name in Settings.model_fields}
    values: dict[str, Any] = {}
    for section, entries in document.items():
        if not isinstance(entries, dict):
            raise SettingsError(f"{path}: section {section!r} must be a mapping")
        for key, value in entries.items():
            dotted = f"{section}.{key}"
            if dotted not in by_key:
                known = ", ".join(sorted(by_key))
                raise SettingsError(f"{path}: unknown key {dotted!r} (known keys: {known})")
            values[by_key[dotted]] = value
    return values


def allowed_values(field: str) -> str:
    """A human description of what a field accepts, derived from its declared constraints."""
    info = Settings.model_fields[field]
    schema = Settings.model_json_schema(by_alias=False)["properties"][field]
    if "allowed" in schema:
        return str(schema["allowed"])
    options = schema.get("anyOf", [schema])
    for option in options:
        if "enum" in option:
            return "one of " + ", ".join(map(str, option["enum"]))
        if option.get("type") in ("integer", "number"):
            kind = "an integer" if option["type"] == "integer" else "a number"
            low = option.get("minimum", option.get("exclusiveMinimum"))
            high = option.get("maximum")
            if low is not None and high is not None:
                return f"{kind} from {low} to {high}"
            if "exclusiveMinimum" in option:
                return f"{kind} greater than {low}"
            return kind
        if option.get("type") == "boolean":
            return "true or false"
        if "pattern" in option:
            return f"text matching {option['pattern']}"
        if "minLength" in option and "maxLength" in option:
            return f"text of {option['minLength']} to {option['maxLength']} characters"
    return info.description or "a valid value"


def load_settings(**overrides: Any) -> Settings:
    """Builds the settings, turning any validation failure into one clear line (SettingsError)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        given = str(error["loc"][0]) if error["loc"] else "?"
        field = _field_named(given)
        if field is not None:
            value = error.get("input")
            raise SettingsError(
                f"invalid setting {yaml_key(field)} ({env_name(field)}) = {value!r}: "
                f"must be {allowed_values(field)}"
            ) from None
        raise SettingsError(f"invalid setting {given}: {error['msg']}") from None


def _field_named(name: str) -> str | None:
    """The field behind a name pydantic reports: the field itself or its environment variable."""
    return next((field for field in Settings.model_fields if name in (field, env_name(field))), None)
