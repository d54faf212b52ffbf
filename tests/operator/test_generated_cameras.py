"""Generated VirtualCameras, valid and invalid, through the real API server to the real operator.

A hypothesis strategy (`cameras`) writes camera specs in which every field is absent, valid or, in at most
one field per example, hostile: out of range, huge, negative, a float for an integer, the wrong JSON type,
unicode, longer than maxLength, a malformed URL, an unknown field. A model says what must happen to each:

- `refusals`: what the CRD's schema and CEL rules refuse, and the field the API server's message must name;
- `stored`: what an accepted spec is stored as (unknown fields and nulls pruned, defaults filled in);
- `outcome`: what an accepted camera becomes on this control plane (kwok: pods are Ready without containers):
  Ready, ScaledToZero, or Degraded with the reason the camera's settings model (InvalidSpec), the API server
  (Rejected: the Deployment is refused), the ReplicaSet controller (ReplicaFailure) or the scheduler
  (Unschedulable: no such claim, or more than the node has) gives.

All examples go to one namespace, served by an operator of their own started with debug logs, while a watch
records every change of every camera. Then: the refusals are the model's and name the field (checked at
once, per example); every accepted camera settles as the model says; the operator is the process it was and
logged no error; each `status: <phase>` line it logged is one change of `.status` that the watch saw (a write
that changes nothing has no watch event), few per camera; and once settled nothing moves until a later
camera's status shows the operator was still at work.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import count
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
import pytest
from drishti_operator import GROUP, PLURAL, VERSION
from drishti_operator.crd import spec_fields
from drishti_operator.render import CACHE_DIR, DEFAULT_RESOURCES, STORE_DIR
from drishti_stream.settings import Settings
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kubernetes import watch
from kubernetes.client.rest import ApiException
from pydantic import TypeAdapter, ValidationError

from hack.cluster.testing import wait_until
from tests.operator.conftest import Background, Cameras
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster

POD_BUDGET = 50  # Ready pods at most (the kwok node runs 110); beyond it, cameras are made with replicas 0
NODE_CPU = Decimal(32)  # the kwok node's allocatable (hack/cluster/controlplane.py)
NODE_MEMORY = Decimal(256 * 2**30)
QUIET_S = 10.0

# ---------------------------------------------------------------------------------------------------------
# The model: what the API server refuses, stores, and what the operator makes of it
# ---------------------------------------------------------------------------------------------------------

GO_SPACE = "\t\n\f\r "  # RE2's \s (the API server's patterns and CEL's matches()): ASCII only
# Go's unicode.IsSpace: what strings.TrimSpace removes, and the Pod validation of an image refuses at its ends
GO_UNICODE_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                             + "".join(chr(c) for c in range(0x2000, 0x200B)))


def go_regex(pattern: str) -> re.Pattern[str]:
    """An RE2 pattern, as the API server and CEL run it, for Python's re: RE2's \\s is ASCII where Python's
    is Unicode, and RE2's $ is the end of the text where Python's also matches before a final newline."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and pattern[i + 1] in "sS":
            if in_class:
                assert pattern[i + 1] == "s", pattern
                out.append(r"\t\n\f\r ")
            else:
                out.append(r"[\t\n\f\r ]" if pattern[i + 1] == "s" else r"[^\t\n\f\r ]")
            i += 2
            continue
        if char == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        out.append(r"\Z" if char == "$" and not in_class else char)
        i += 1
    return re.compile("".join(out))


# The CRD's rules, written out as the issue and the operator's README state them (not read from crd.yaml).
URL = go_regex(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
NOT_A_FILE = go_regex(r"^([a-zA-Z][a-zA-Z0-9+.-]*://|synthetic(:|$))")
GS = go_regex(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/.+$")
HTTP = go_regex(r"^https?://[^/?#\s]+([/?#]\S*)?$")
SYNTHETIC = go_regex(r"^synthetic:([0-9]{1,5})x([0-9]{1,5})$")


def drawable(source: str) -> bool:
    """`synthetic:WxH` of a size the scene is drawn at: 160x120 to 7680x4320."""
    match = SYNTHETIC.search(source)
    return bool(match) and 160 <= int(match[1]) <= 7680 and 120 <= int(match[2]) <= 4320


SOURCE_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda s: bool(URL.search(s)) and not re.match(r"(gs|https?)://", s),
     "source must be a file path, gs://bucket/object, http(s)://... or synthetic[:WxH]"),
    (lambda s: s.startswith("gs://") and not GS.search(s), "names a bucket and an object"),
    (lambda s: bool(re.match(r"https?://", s)) and not HTTP.search(s), "needs a host"),
    (lambda s: s.startswith("synthetic:") and not drawable(s),
     "synthetic:WIDTHxHEIGHT` from 160x120 to 7680x4320"),
)
DNS_1035 = go_regex(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = go_regex(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kubernetes' quantity grammar, with an integer exponent of at most two digits and at most 20 digits on each
# side of the point: what its parser takes and can afford.
QUANTITY = go_regex(r"^(\+|-)?(([0-9]{1,20}(\.[0-9]{0,20})?)|(\.[0-9]{1,20}))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?[0-9]{1,2}))?$")
IMAGE = go_regex(r"^\S+$")
OTLP = go_regex(r"^https?://[^\s/]+(/\S*)?$")
SECRET_KEY = go_regex(r"^[-._a-zA-Z0-9]+$")
NAME_RULE = "name must be a DNS-1035 label"
RESOURCE_NAMES = ("cpu", "memory")  # the resource names the generator writes that a Pod accepts
RESERVED_MOUNTS = ("/tmp", CACHE_DIR, STORE_DIR)  # the operator's own mounts in the camera's container

SETTINGS = {name: field for name, field in spec_fields().items() if field != "video_path"}
OBJECTS: dict[str, tuple[str, ...]] = {  # the spec's object fields and their properties
    "volume": ("claimName", "mountPath", "subPath"),
    "store": ("claimName",),
    "tracing": ("otlpEndpoint",),
    "gcsCredentials": ("secretName", "key"),
    "resources": ("requests", "limits"),
}
SPEC_KEYS = frozenset({"source", *SETTINGS, "replicas", "image", "imagePullPolicy", *OBJECTS})
DEFAULTS: dict[str, Any] = {
    **{name: Settings.model_fields[field].default for name, field in SETTINGS.items()
       if Settings.model_fields[field].default is not None},
    "replicas": 1,
}
NESTED_DEFAULTS = {"volume": {"mountPath": "/videos"}, "gcsCredentials": {"key": "key.json"}}


@dataclass(frozen=True)
class Refusal:
    """An error the API server reports: the field's path and words of the broken rule."""

    path: str
    words: str

    def found_in(self, message: str) -> bool:
        return f"{self.path}: " in message and self.words in message


@dataclass(frozen=True)
class Outcome:
    """Where an accepted camera settles: its phase and, when Degraded, the reason."""

    phase: str
    reason: str | None = None

    def __str__(self) -> str:
        return f"{self.phase}({self.reason})" if self.phase == "Degraded" else self.phase


def json_kind(value: Any) -> str:
    """The JSON type the API server sees; Go decodes an integer beyond int64 as a float."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if -2**63 <= value < 2**63 else "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def passes_as_integer(value: int | float) -> bool:
    """Whether a number passes `type: integer`, as go-openapi's IsFloat64AJSONInteger (in the API server)
    decides: an integer within 2^53 or a float within a relative 1e-9 above one (2.0000000001 passes)."""
    if json_kind(value) == "integer":
        return True
    number = float(value)
    if not math.isfinite(number) or abs(number) > 2**53 - 1:
        return False
    whole = float(math.trunc(number))
    if number == whole:
        return True
    if number < 0 or whole == 0:  # Go's uint64 of a negative float: a relative error near 1
        return False
    return (number - whole) / (number + whole) < 1e-9


def _bounds(field: str) -> tuple[Any, Any, bool]:
    """(low, high, low is exclusive) of a setting, from the settings model."""
    low = high = None
    exclusive = False
    for item in Settings.model_fields[field].metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, exclusive = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
    return low, high, exclusive


def _setting_type(field: str) -> Any:
    annotation = Settings.model_fields[field].annotation
    options = [arg for arg in get_args(annotation) if arg is not type(None)] or [annotation]
    return annotation if get_origin(annotation) is Literal else options[0]


def _number(path: str, value: Any, low: Any, high: Any, *, integer: bool,
            exclusive: bool = False) -> list[Refusal]:
    kind = "integer" if integer else "number"
    if json_kind(value) not in ("integer", "number"):
        return [Refusal(path, f"must be of type {kind}")]
    errors = [Refusal(path, "must be of type integer")] if integer and not passes_as_integer(value) else []
    if low is not None and (value <= low if exclusive else value < low):
        errors.append(Refusal(path, "should be greater than" + ("" if exclusive else " or equal to")))
    if high is not None and value > high:
        errors.append(Refusal(path, "should be less than or equal to"))
    return errors


def _string(path: str, value: Any, *, min_length: int = 0, max_length: int | None = None,
            pattern: re.Pattern[str] | None = None, enum: tuple[str, ...] | None = None) -> list[Refusal]:
    if not isinstance(value, str):
        return [Refusal(path, "must be of type string")]
    errors = []
    if enum is not None and value not in enum:
        errors.append(Refusal(path, "Unsupported value"))
    if len(value) < min_length:
        errors.append(Refusal(path, f"should be at least {min_length} chars long"))
    if max_length is not None and len(value) > max_length:
        errors.append(Refusal(path, "Too long"))
    if pattern is not None and not pattern.search(value):
        errors.append(Refusal(path, "should match"))
    return errors


def _setting(name: str, value: Any) -> list[Refusal]:
    """A setting's schema in the CRD is the settings model's: its type, range, enum, length and pattern."""
    field, path = SETTINGS[name], f"spec.{name}"
    kind = _setting_type(field)
    if get_origin(kind) is Literal:
        return _string(path, value, enum=get_args(kind))
    if kind is bool:
        return [] if isinstance(value, bool) else [Refusal(path, "must be of type boolean")]
    if kind in (int, float):
        low, high, exclusive = _bounds(field)
        return _number(path, value, low, high, integer=kind is int, exclusive=exclusive)
    metadata = Settings.model_fields[field].metadata
    pattern = next((m.pattern for m in metadata if getattr(m, "pattern", None)), None)
    return _string(path, value, max_length=next((m.max_length for m in metadata
                                                  if isinstance(m, annotated_types.MaxLen)), None),
                   pattern=go_regex(pattern) if pattern else None)


def _object(path: str, value: Any, required: str | None,
            check: Callable[[dict[str, Any]], list[Refusal]]) -> list[Refusal]:
    if not isinstance(value, dict):
        return [Refusal(path, "must be of type object")]
    present = {key: item for key, item in value.items() if item is not None}
    if required and required not in present:
        return [Refusal(f"{path}.{required}", "Required value")]
    return check(present)


def _claim(path: str, value: Any) -> list[Refusal]:
    return _string(path, value, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)


def _quantities(path: str, value: Any) -> list[Refusal]:
    if not isinstance(value, dict):
        return [Refusal(path, "must be of type object")]
    errors = []
    for key, quantity in value.items():
        if quantity is None:
            continue
        if json_kind(quantity) == "string":
            if not QUANTITY.search(quantity):
                errors.append(Refusal(f"{path}.{key}", "should match"))
        elif json_kind(quantity) not in ("integer", "number") or not passes_as_integer(quantity):
            errors.append(Refusal(f"{path}.{key}", "must be of type"))
    return errors


def _replicas(value: Any) -> list[Refusal]:
    """The schema's range, and the scale subresource's: a JSON integer (not even 1.0) of at most 2^31-1."""
    errors = _number("spec.replicas", value, 0, None, integer=True)
    if json_kind(value) != "integer":
        errors.append(Refusal("spec.replicas", "accessor error"))
    elif value > 2**31 - 1:
        errors.append(Refusal("spec.replicas", "should be less than or equal to 2147483647"))
    return errors


def _spec(spec: dict[str, Any]) -> list[Refusal]:
    given = {key: value for key, value in spec.items() if key in SPEC_KEYS and value is not None}
    errors: list[Refusal] = []
    for name, value in given.items():
        if name in SETTINGS:
            errors += _setting(name, value)
    if "replicas" in given:
        errors += _replicas(given["replicas"])
    if "image" in given:
        errors += _string("spec.image", given["image"], min_length=1, max_length=1024, pattern=IMAGE)
    if "imagePullPolicy" in given:
        errors += _string("spec.imagePullPolicy", given["imagePullPolicy"],
                          enum=("Always", "IfNotPresent", "Never"))
    if "resources" in given:
        errors += _object("spec.resources", given["resources"], None, lambda r: [
            error for kind in ("requests", "limits") if kind in r
            for error in _quantities(f"spec.resources.{kind}", r[kind])])
    if "volume" in given:
        errors += _object("spec.volume", given["volume"], "claimName", lambda v: [
            *_claim("spec.volume.claimName", v["claimName"]),
            *(_string("spec.volume.mountPath", v["mountPath"], max_length=1024, pattern=go_regex("^/"))
              if "mountPath" in v else []),
            *(_string("spec.volume.subPath", v["subPath"], max_length=1024, pattern=go_regex("^[^/]"))
              if "subPath" in v else [])])
    if "store" in given:
        errors += _object("spec.store", given["store"], "claimName",
                          lambda s: _claim("spec.store.claimName", s["claimName"]))
    if "tracing" in given:
        errors += _object("spec.tracing", given["tracing"], None, lambda t: _string(
            "spec.tracing.otlpEndpoint", t["otlpEndpoint"], max_length=2048, pattern=OTLP)
            if "otlpEndpoint" in t else [])
    if "gcsCredentials" in given:
        errors += _object("spec.gcsCredentials", given["gcsCredentials"], "secretName", lambda g: [
            *_claim("spec.gcsCredentials.secretName", g["secretName"]),
            *(_string("spec.gcsCredentials.key", g["key"], min_length=1, max_length=253, pattern=SECRET_KEY)
              if "key" in g else [])])
    source = given.get("source")
    if source is None:
        return [*errors, Refusal("spec.source", "Required value")]
    errors += _string("spec.source", source, min_length=1, max_length=4096)
    if not isinstance(source, str):
        return errors
    errors += [Refusal("spec.source", words) for broken, words in SOURCE_RULES if broken(source)]
    if "gcsCredentials" in given and not source.startswith("gs://"):
        errors.append(Refusal("spec.gcsCredentials", "gcsCredentials applies only to a gs:// source"))
    if "volume" in given and NOT_A_FILE.search(source):
        errors.append(Refusal("spec.volume", "volume applies only to a file path source"))
    if "volume" not in given and source and not source.startswith("/") and not NOT_A_FILE.search(source):
        errors.append(Refusal("spec.source", "a relative file path is resolved under volume.mountPath"))
    return errors


def refusals(name: str, spec: Any) -> list[Refusal]:
    """What the API server must report for this camera: nothing when it must accept it."""
    errors = []
    if not name:
        errors.append(Refusal("metadata.name", "Required value"))
    elif len(name) > 253 or not DNS_SUBDOMAIN.search(name):
        errors.append(Refusal("metadata.name", "Invalid value"))
    if len(name) > 63 or not DNS_1035.search(name):
        errors.append(Refusal("metadata.name", NAME_RULE))  # the CRD's root rule, pointed at the name
    if spec is MISSING:
        errors.append(Refusal("spec", "Required value"))
    elif not isinstance(spec, dict):
        errors.append(Refusal("spec", "must be of type object"))
    else:
        errors += _spec(spec)
    return errors


def stored(spec: dict[str, Any]) -> dict[str, Any]:
    """An accepted spec as the API server stores it: unknown fields and nulls pruned, defaults filled in."""
    kept = {key: value for key, value in spec.items() if key in SPEC_KEYS and value is not None}
    for name, properties in OBJECTS.items():
        if name in kept:
            kept[name] = {key: value for key, value in kept[name].items()
                          if key in properties and value is not None}
    for kind, quantities in (kept.get("resources") or {}).items():
        kept["resources"][kind] = {key: value for key, value in quantities.items() if value is not None}
    for name, defaults in NESTED_DEFAULTS.items():
        if name in kept:
            kept[name] = {**defaults, **kept[name]}
    return {**DEFAULTS, **kept}


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON documents, numbers by value (the API server writes integers beyond int64 as floats)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if json_kind(a) in ("integer", "number") and json_kind(b) in ("integer", "number"):
        return bool(a == b) if json_kind(a) == json_kind(b) == "integer" else float(a) == float(b)
    return bool(type(a) is type(b) and a == b)


_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1, "k": 10**3, "M": 10**6,
             "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY_PARTS = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)", re.S)


def quantity(value: int | float | str) -> Decimal | None:
    """A resource quantity as Kubernetes reads it; None when it cannot (none the CRD's pattern takes)."""
    if not isinstance(value, str):
        return Decimal(value)
    parts = _QUANTITY_PARTS.fullmatch(value)
    if parts is None:
        return None
    sign, number, suffix = parts.groups()
    if suffix in _SUFFIXES:
        scale = Decimal(_SUFFIXES[suffix])
    elif re.fullmatch(r"[eE][+-]?[0-9]+", suffix):
        scale = Decimal(10) ** int(suffix[1:])
    else:
        return None
    try:
        return Decimal(f"{sign}{number}") * scale
    except InvalidOperation:
        return None


def _trimmed(text: str) -> bool:
    return text[:1] in GO_UNICODE_SPACE or text[-1:] in GO_UNICODE_SPACE


_ADAPTERS = {name: TypeAdapter(Annotated[info.annotation, info])
             for name, info in ((name, Settings.model_fields[field]) for name, field in SETTINGS.items())}


def outcome(spec: dict[str, Any]) -> Outcome:
    """Where a stored spec settles on this control plane, and why."""
    for name, adapter in _ADAPTERS.items():  # the camera's own settings model: the operator's InvalidSpec
        if name in spec:
            try:
                adapter.validate_python(spec[name])
            except ValidationError:
                return Outcome("Degraded", "InvalidSpec")
    given = spec.get("resources") or {}
    resources = {kind: dict(given.get(kind) or default) for kind, default in DEFAULT_RESOURCES.items()}
    amounts = {kind: {key: quantity(value) for key, value in values.items()}
               for kind, values in resources.items()}
    volume = spec.get("volume") or {}
    if posixpath.normpath(volume.get("mountPath", "/videos")) in RESERVED_MOUNTS:
        return Outcome("Degraded", "InvalidSpec")  # the operator will not mount a claim over its own volumes
    requests, limits = amounts["requests"], amounts["limits"]
    every = [(key, amount) for values in amounts.values() for key, amount in values.items()]
    if any(key not in RESOURCE_NAMES or (amount is not None and amount < 0) for key, amount in every) \
            or any(requests[key] > limits[key] for key in requests.keys() & limits.keys()) \
            or ".." in str(volume.get("subPath", "")).split("/"):
        return Outcome("Degraded", "Rejected")
    if spec["replicas"] == 0:
        return Outcome("ScaledToZero")
    if _trimmed(spec.get("image", "image")):
        return Outcome("Degraded", "ReplicaFailure")  # the Deployment takes it, its pods are refused
    pod = {key: requests.get(key, limits.get(key)) for key in RESOURCE_NAMES}
    if volume or spec.get("store") or (pod["cpu"] or 0) > NODE_CPU or (pod["memory"] or 0) > NODE_MEMORY:
        return Outcome("Degraded", "Unschedulable")
    return Outcome("Ready")


def writes_allowed(expected: Outcome, replicas: int) -> tuple[int, int]:
    """(least, most) status writes of a camera, from the status code: a spec the operator cannot apply is
    reported once (`reconcile._fail`) and never retried; otherwise each write follows a change of what the
    status counts: the Deployment appears (before it, `Creating`), and each of `replicas` pods appears and
    becomes ready (or troubled), so at most 2 + 2 * replicas."""
    if expected.phase == "Degraded" and expected.reason in ("InvalidSpec", "Rejected"):
        return 1, 1
    return 1, 2 + 2 * replicas


# ---------------------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------------------

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


@dataclass(frozen=True)
class Camera:
    """One example: the spec and, when the example breaks it, the name (else the test names it, uniquely,
    `name_length` characters long); `broken` says which field the generator meant to break, if any."""

    spec: Any
    name: str | None = None
    name_length: int = 12
    broken: str | None = None


def _characters(exclude: str = "") -> st.SearchStrategy[str]:
    return st.characters(exclude_categories=("Cs",), exclude_characters=exclude)


TEXT = st.text(_characters(), max_size=40)
JSON_SCALARS = st.one_of(st.booleans(), st.integers(-10**30, 10**30), TEXT,
                         st.floats(allow_nan=False, allow_infinity=False))
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=5)


def wrong_type(*allowed: str) -> st.SearchStrategy[Any]:
    return JSON.filter(lambda value: json_kind(value) not in allowed)


def _field_strategies(field: str) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(valid, hostile) values of a setting, from its type and range in the settings model."""
    kind = _setting_type(field)
    if get_origin(kind) is Literal:
        words = get_args(kind)
        return st.sampled_from(words), st.one_of(
            st.sampled_from([word.upper() for word in words] + [word.capitalize() for word in words]
                            + ["", "loud"]),
            TEXT.filter(lambda text: text not in words), wrong_type("string"))
    if kind is bool:
        return st.booleans(), st.sampled_from(["true", "false", "yes", 0, 1]) | wrong_type("boolean")
    low, high, exclusive = _bounds(field)
    if kind is int:
        valid = st.integers(low, high)
        return valid | valid.map(float), st.one_of(
            st.integers(max_value=low - 1), st.integers(min_value=high + 1),
            st.sampled_from([-2**63, -2**63 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 10**30, -10**30, 1e20]),
            st.floats(low, high).filter(lambda f: not f.is_integer()),  # a float for an integer
            st.builds(lambda n, k, up: n + (1 if up else -1) * n * 10.0**-k,  # an integer plus rounding
                      st.integers(max(low, 1), high), st.integers(7, 13), st.booleans()),
            st.sampled_from([str(low), str(high)]), wrong_type("integer", "number"))
    if kind is float:
        above = {} if high is None else {"max_value": high}
        valid = st.floats(min_value=low, exclude_min=exclusive, allow_infinity=False, **above)
        hostile = [st.floats(max_value=low, exclude_max=not exclusive, allow_infinity=False, allow_nan=False),
                   st.sampled_from([low, -0.0, str(low)] if exclusive else [-1, str(low)]),
                   wrong_type("integer", "number")]
        if high is not None:
            hostile.append(st.floats(min_value=high, exclude_min=True, allow_infinity=False))
            hostile.append(st.integers(min_value=int(high) + 1))
        return valid | st.integers(max(1, math.ceil(low)), int(high) if high else 10**30), st.one_of(hostile)
    # a string setting with a pattern: gcsEndpoint
    assert field == "gcs_endpoint", field
    host = st.text(_characters(GO_SPACE + "/"), min_size=1, max_size=20)
    valid = st.builds("{}://{}{}".format, st.sampled_from(["http", "https"]), host, TEXT)
    return valid, st.one_of(
        st.sampled_from(["http://", "https:///x", "ftp://host", "host:4443", "//host", "http:// x"]),
        st.builds("http://{}".format, st.sampled_from(sorted(GO_UNICODE_SPACE - set(GO_SPACE)))),  # taken by
        # the CRD (RE2's \s is ASCII), refused by the camera (its \s is Unicode): InvalidSpec
        st.just("http://h/" + "x" * 2048), TEXT.filter(lambda t: not re.match(r"https?://[^\s/]", t)),
        wrong_type("string"))


def _quantity(unit: str, values: list[int]) -> st.SearchStrategy[int | str]:
    """One of `values` (millicores or bytes) in one of the notations Kubernetes reads."""
    def notations(value: int) -> list[int | str]:
        if unit == "cpu":
            cores = Decimal(value) / 1000
            found: list[int | str] = [f"{value}m", f"{cores.normalize():f}", f"{value}e-3", f"+{value}m",
                                      f"{value * 10**6}n", f"{cores * 1000}e-03"]
            return found + ([int(cores)] if cores == int(cores) else [])
        found = [value, str(value), f"{Decimal(value) / 1000}k", f"{value}e0", f"0{value}"]
        return found + [f"{value // 2**p}{s}" for p, s in ((10, "Ki"), (20, "Mi"), (30, "Gi"), (40, "Ti"))
                        if value and value % 2**p == 0]
    return st.sampled_from(values).flatmap(lambda value: st.sampled_from(notations(value)))


SMALL_CPU = _quantity("cpu", [0, 1, 10, 100, 250])  # with POD_BUDGET pods, far below the node's CPUs
LIMIT_CPU = _quantity("cpu", [250, 500])  # above SMALL_CPU and the default request
SMALL_MEMORY = _quantity("memory", [0, 1, 2**20, 64 * 2**20, 256 * 2**20, 512 * 2**20])
LIMIT_MEMORY = _quantity("memory", [512 * 2**20, 768 * 2**20, 2**30])
HUGE_CPU = _quantity("cpu", [64_000, 1_000_000, 10**9])
HUGE_MEMORY = _quantity("memory", [2**40, 10**15, 2**62])


def _map(**entries: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=entries)


VALID_RESOURCES = _map(requests=_map(cpu=SMALL_CPU, memory=SMALL_MEMORY),
                       limits=_map(cpu=LIMIT_CPU, memory=LIMIT_MEMORY))
BAD_QUANTITY = st.one_of(
    st.sampled_from(["a lot", "1.5.5", "1 Gi", "1gi", "Mi", "", "1e", "--1", "0x10", "\u0661", "1Ki ", "e3",
                     "1mi"]),
    TEXT.filter(lambda text: not QUANTITY.search(text)))
HOSTILE_RESOURCES = st.one_of(
    _map(requests=st.fixed_dictionaries({"cpu": HUGE_CPU}), limits=_map(cpu=HUGE_CPU)),  # no node has it
    st.fixed_dictionaries({"requests": st.fixed_dictionaries({"memory": HUGE_MEMORY}),
                           "limits": st.fixed_dictionaries({"memory": HUGE_MEMORY})}),
    st.fixed_dictionaries({"requests": st.fixed_dictionaries({"memory": HUGE_MEMORY})}),  # above the limit
    st.fixed_dictionaries({"limits": _map(cpu=SMALL_CPU, memory=SMALL_MEMORY)}),  # below the default requests
    st.fixed_dictionaries({"requests": st.fixed_dictionaries({"cpu": LIMIT_CPU}),
                           "limits": st.fixed_dictionaries({"cpu": SMALL_CPU})}),  # requests above limits
    st.fixed_dictionaries({"requests": st.fixed_dictionaries(  # negative
        {"cpu": st.sampled_from(["-1", "-250m", -1, "-0.5"])})}),
    st.fixed_dictionaries({"requests": st.dictionaries(  # not a resource a container may ask for
        st.sampled_from(["foo", "gpu", "CPU", "memory ", "\u00e9t\u00e9"]) | TEXT.filter(
            lambda key: key not in RESOURCE_NAMES), SMALL_MEMORY, min_size=1, max_size=2)}),
    st.fixed_dictionaries({"requests": st.fixed_dictionaries({"cpu": BAD_QUANTITY})}),  # not a quantity
    st.fixed_dictionaries({kind: st.fixed_dictionaries({"cpu": st.sampled_from(  # the pattern's, not the
        ["1e1.5", "2E.5", "250e-3.0", "1e+1."])}) for kind in ("requests", "limits")}),  # parser's
    st.fixed_dictionaries({"limits": st.fixed_dictionaries(
        {"memory": st.sampled_from([1.5, True, [], {}, 10**30, 2.0**60])
         | wrong_type("integer", "string")})}),
    st.fixed_dictionaries({"requests": wrong_type("object")}), wrong_type("object"))

SUBDOMAIN = st.from_regex(
    r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?){0,2}\Z")
BAD_SUBDOMAIN = st.sampled_from(["Frames_Of_Gate", "-x", "x-", "a..b", "\u00e9", "a" * 254, "UPPER", "a b",
                                 ""])
MOUNT_PATH = st.builds("/{}".format, TEXT).filter(lambda path: path not in RESERVED_MOUNTS)
SUB_PATH = TEXT.filter(lambda path: path[:1] not in ("", "/"))
VALID_VOLUME = st.fixed_dictionaries({"claimName": SUBDOMAIN}, optional={
    "mountPath": MOUNT_PATH, "subPath": SUB_PATH, "bogus": JSON})
HOSTILE_VOLUME = st.one_of(
    st.fixed_dictionaries({}, optional={"mountPath": MOUNT_PATH}),
    st.fixed_dictionaries({"claimName": BAD_SUBDOMAIN | wrong_type("string")}),
    st.fixed_dictionaries({"claimName": SUBDOMAIN, "mountPath": SUB_PATH | st.just("/" + "v" * 1024)}),
    st.fixed_dictionaries({"claimName": SUBDOMAIN, "subPath": st.sampled_from(["/abs", "/", "x" * 1025])}),
    st.fixed_dictionaries({"claimName": SUBDOMAIN, "subPath": st.sampled_from(  # a Pod refuses '..'
        ["..", "a/../b", "a/..", "../up"])}),
    st.fixed_dictionaries({"claimName": SUBDOMAIN, "mountPath": st.sampled_from(RESERVED_MOUNTS)}),
    wrong_type("object"))
VALID_GCS = st.fixed_dictionaries({"secretName": SUBDOMAIN}, optional={
    "key": st.from_regex(r"\A[-._a-zA-Z0-9]{1,40}\Z")})
HOSTILE_GCS = st.one_of(
    st.fixed_dictionaries({}, optional={"key": st.just("key.json")}),
    st.fixed_dictionaries({"secretName": BAD_SUBDOMAIN | wrong_type("string")}),
    st.fixed_dictionaries({"secretName": SUBDOMAIN,
                           "key": st.sampled_from(["a/b", "", "k" * 254, "\u00e9", "a b"])}),
    wrong_type("object"))
OTLP_HOST = st.text(_characters(GO_SPACE + "/"), min_size=1, max_size=20)
OTLP_PATH = st.just("") | st.builds("/{}".format, st.text(_characters(GO_SPACE)))
VALID_TRACING = _map(otlpEndpoint=st.builds("{}://{}{}".format, st.sampled_from(["http", "https"]), OTLP_HOST,
                                            OTLP_PATH), bogus=JSON)
HOSTILE_TRACING = st.one_of(
    st.fixed_dictionaries({"otlpEndpoint": st.sampled_from(
        ["jaeger:4318", "http://", "http://h p", "http://h/a b", "grpc://h", "http://h/" + "x" * 2048])
        | TEXT.filter(lambda text: not OTLP.search(text)) | wrong_type("string")}),
    wrong_type("object"))
STORE = st.fixed_dictionaries({"claimName": SUBDOMAIN})
HOSTILE_STORE = st.one_of(st.just({}), wrong_type("object"),
                          st.fixed_dictionaries({"claimName": BAD_SUBDOMAIN | wrong_type("string")}))
# kwok, which makes this control plane's pods Ready, writes a pod's image into its status through YAML, and
# stalls on the characters YAML cannot print that JSON leaves as they are: such images are left out (with a
# kubelet, an image name like that fails to pull, InvalidImageName).
KWOK_STALLS = "\x7f" + "".join(chr(c) for c in range(0x80, 0xA0) if c != 0x85) + "\ufffe\uffff"
NON_SPACE = st.text(_characters(GO_SPACE + KWOK_STALLS), min_size=1, max_size=60)
EDGE_SPACE = st.sampled_from(sorted(GO_UNICODE_SPACE - set(GO_SPACE)))
HOSTILE_IMAGE = st.one_of(
    st.sampled_from(["", "a b", "img\t:1", "x" * 1025, "\u00e9" * 1025]), wrong_type("string"),
    st.builds("{}{}".format, EDGE_SPACE, NON_SPACE), st.builds("{}{}".format, NON_SPACE, EDGE_SPACE))
HOSTILE_REPLICAS = st.one_of(st.integers(max_value=-1), wrong_type("integer", "number"),
                             st.sampled_from([-2**63, 2**31, 10**12, 2**63, 1.0, 0.0, 2.5]))

SOURCES: dict[str, st.SearchStrategy[str]] = {
    "synthetic": st.just("synthetic"),
    "synthetic-size": st.builds("synthetic:{}x{}".format, st.sampled_from(["160", "0640", "7680"])
                                | st.integers(160, 7680).map(str), st.integers(120, 4320)),
    "absolute": st.builds("/{}".format, TEXT) | st.just("/" + "\u00e9" * 4095),
    "relative": TEXT.filter(lambda s: s[:1] not in ("", "/") and not NOT_A_FILE.search(s)),
    "gs": st.builds("gs://{}/{}".format, st.from_regex(r"\A[a-z0-9][a-z0-9._-]{1,30}[a-z0-9]\Z"),
                    st.text(_characters("\n"), min_size=1, max_size=40)),
    "http": st.builds("{}://{}{}".format, st.sampled_from(["http", "https"]),
                      st.text(_characters(GO_SPACE + "/?#"), min_size=1, max_size=20),
                      st.just("") | st.builds("{}{}".format, st.sampled_from("/?#"),
                                              st.text(_characters(GO_SPACE), max_size=40))),
}
HOSTILE_SOURCE = st.one_of(
    st.sampled_from(["", "ftp://host/video.mp4", "s3://bucket/video.mp4", "HTTP://host/v.mp4", "gs://bucket-only",
                     "gs://b/x", "gs://Bucket/x", "gs://bucket/", "gs://bucket/a\nb", "https://", "http:///x",
                     "https://host/a b", "synthetic:big", "synthetic:", "synthetic:1x", "synthetic:1x1x1",
                     "synthetic:0x0", "synthetic:-160x120", "synthetic:160x120 ", "synthetic:000160x120",
                     "videos/gate.mp4", "c:\\video.mp4", "x" * 4097, "/" + "\u00e9" * 4096]),
    st.builds("{}://{}".format, st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9+.-]{0,8}\Z").filter(
        lambda scheme: scheme not in ("gs", "http", "https")), TEXT),
    TEXT.filter(lambda s: s[:1] != "/" and not NOT_A_FILE.search(s)),  # relative, and no volume
    st.builds("synthetic:{}x{}".format, st.integers(0, 159) | st.integers(7681, 99999) | st.just(10**12),
              st.integers(0, 5000)),
    st.builds("synthetic:{}x{}".format, st.integers(160, 7680),
              st.integers(0, 119) | st.integers(4321, 10**6)),
    wrong_type("string"), st.just(MISSING))
HOSTILE_NAME = st.one_of(
    st.sampled_from(["1cam", "c" * 64, "a.b", "Upper", "a_b", "a-", "-a", "\u00e9", "x" * 254, "", "cam.v2"]),
    st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,70}[a-z0-9]\Z").filter(lambda name: not DNS_1035.search(name)
                                                                    or len(name) > 63),
    st.text(_characters(), min_size=1, max_size=20).filter(lambda name: not DNS_1035.search(name)))

SIMPLE = {name: _field_strategies(field) for name, field in SETTINGS.items()}
SIMPLE.update({
    "replicas": (st.sampled_from([0, 1, 1, 2]), HOSTILE_REPLICAS),
    "image": (NON_SPACE | st.just("r" * 1024), HOSTILE_IMAGE),
    "imagePullPolicy": (st.sampled_from(["Always", "IfNotPresent", "Never"]),
                        st.sampled_from(["always", "", "Sometimes"]) | wrong_type("string")),
    "resources": (VALID_RESOURCES, HOSTILE_RESOURCES),
    "store": (STORE, HOSTILE_STORE),
    "tracing": (VALID_TRACING, HOSTILE_TRACING),
})
BREAKABLE = ("name", "spec", "source", "volume", "gcsCredentials", *SIMPLE)
KINDS = ("synthetic", "synthetic", "synthetic-size", "absolute", "absolute", "relative", "gs", "http")
# Examples per run of the generator: one run breaks nothing, then one run per field breaks that field.
VALID_EXAMPLES = 70
BROKEN_EXAMPLES = 8


@st.composite
def cameras(draw: st.DrawFn, broken: str | None) -> Camera:
    """A camera with every field absent, null or valid, but `broken`, when given, hostile."""
    kind = draw(st.sampled_from(KINDS))
    spec: dict[str, Any] = {"source": draw(HOSTILE_SOURCE if broken == "source" else SOURCES[kind])}
    file = broken != "source" and kind in ("absolute", "relative")
    if broken == "volume":  # one the schema refuses, or a valid one for a source that is not a file
        spec["volume"] = draw(HOSTILE_VOLUME if file else VALID_VOLUME)
    elif kind == "relative" or (file and draw(st.booleans())):
        spec["volume"] = draw(VALID_VOLUME)
    if broken == "gcsCredentials":  # likewise, for a source that is not gs://
        spec["gcsCredentials"] = draw(HOSTILE_GCS if kind == "gs" else VALID_GCS)
    elif kind == "gs" and broken != "source" and draw(st.booleans()):
        spec["gcsCredentials"] = draw(VALID_GCS)
    for name, (valid, hostile) in SIMPLE.items():
        if name == broken:
            spec[name] = draw(hostile)
            continue
        absent = 9 if name == "store" else 3  # a claim that does not exist: pods stay Pending
        presence = draw(st.sampled_from(["absent"] * absent + ["null", "value", "value"]))
        if presence != "absent":
            spec[name] = None if presence == "null" else draw(valid)
    spec.update(draw(st.dictionaries(st.text(max_size=12).filter(lambda key: key not in SPEC_KEYS), JSON,
                                     max_size=2)))  # unknown fields: pruned
    spec = {key: value for key, value in spec.items() if value is not MISSING}
    if broken == "spec":
        return Camera(spec=draw(st.just(MISSING) | wrong_type("object")), broken=broken)
    if broken == "name":
        return Camera(spec=spec, name=draw(HOSTILE_NAME), broken=broken)
    return Camera(spec=spec, name_length=draw(st.integers(6, 63)), broken=broken)


# In every run: the refusals of test_validation.py, and accepted specs that settle Degraded or, whatever their
# characters, Ready.
SEEDS = [Camera(spec={"source": "synthetic", **spec}) for spec in (
    {"fps": 0}, {"fps": 121}, {"jpegQuality": 101}, {"jpegQuality": 0}, {"source": ""},
    {"source": "ftp://host/video.mp4"}, {"source": "s3://bucket/video.mp4"}, {"source": "gs://bucket-only"},
    {"source": "https://"}, {"source": "synthetic:big"}, {"source": "videos/gate.mp4"},
    {"gcsCredentials": {"secretName": "key"}}, {"logLevel": "loud"}, {"replicas": -1}, {"epoch": 0},
    {"resources": {"requests": {"cpu": "a lot"}}}, {"store": {}}, {"store": {"claimName": "Frames_Of_Gate"}},
    {"cacheBudgetMb": -1}, {"fps": 10.00000001}, {"gcsEndpoint": "http://\u00a0"}, {"image": "\u00a0camera"},
    {"resources": {"limits": {"memory": "100Mi"}}}, {"resources": {"requests": {"cpu": "500"}}},
    {"store": {"claimName": "frames"}}, {"source": "videos/gate.mp4", "volume": {"claimName": "v",
                                                                                 "subPath": "../up"}},
    {"source": "/videos/\U0001f3a5 gate.mp4"}, {"resources": {"requests": {"cpu": "1e1.5"}}},
    {"source": "gate.mp4", "volume": {"claimName": "videos", "mountPath": "/tmp"}},
    {"source": "synthetic:0x0"}, {"source": "synthetic:7681x4320"}, {"epoch": 1e308},
)] + [Camera(spec={"source": "synthetic"}, name=name) for name in ("1cam", "c" * 64, "Cam")]
SEEDS.append(Camera(spec=MISSING))


# ---------------------------------------------------------------------------------------------------------
# The observers: a watch of the namespace's cameras, the operator's log
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    at: float  # time.monotonic()
    name: str
    status: dict[str, Any] | None


class CameraWatch(Background):
    """Every watch event of the namespace's cameras, from a resourceVersion taken before the first camera."""

    def __init__(self, cams: Cameras) -> None:
        super().__init__(name="camera-watch")
        self.cams = cams
        self.events: list[Event] = []
        self.failure: BaseException | None = None
        listed = cams.custom.list_namespaced_custom_object(GROUP, VERSION, cams.namespace, PLURAL)
        self.version = listed["metadata"]["resourceVersion"]

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                for event in watch.Watch().stream(
                        self.cams.custom.list_namespaced_custom_object, GROUP, VERSION, self.cams.namespace,
                        PLURAL, resource_version=self.version, timeout_seconds=2, allow_watch_bookmarks=True):
                    body = event["object"]
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch error: {body}")
                    self.version = body["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        name = body["metadata"]["name"]
                        self.events.append(Event(time.monotonic(), name, body.get("status")))
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def latest(self) -> dict[str, dict[str, Any] | None]:
        return {event.name: event.status for event in list(self.events)}

    def changes(self, name: str) -> list[dict[str, Any]]:
        """The successive values of a camera's .status, each different from the one before."""
        found, before = [], None
        for event in list(self.events):
            if event.name == name and event.status != before:
                found.append(event.status or {})
                before = event.status
        return found


def status_writes(log: str, namespace: str, cameras: set[str]) -> dict[str, list[str]]:
    """Camera -> the phases of the status writes the operator logged (`status_writer.write_status`), in order.
    A write after a pod's event is logged under the pod's name: its ReplicaSet's `<camera>-<hash>-`, cut to 58
    characters, and 5 random ones."""
    writes: dict[str, list[str]] = {name: [] for name in cameras}
    for prefix, phase in re.findall(rf"^\[{re.escape(namespace)}/([^\]]+)\] status: (\w+)$", log, re.M):
        base = prefix[:-5]
        owners = [prefix] if prefix in cameras else [
            name for name in cameras if base.startswith(f"{name}-") or f"{name}-".startswith(base)]
        assert len(owners) == 1, f"a status write under {prefix!r}: cameras {owners}"
        writes[owners[0]].append(phase)
    return writes


ERRORS = ("Traceback", "failed with an exception", "unexpected error", "finished unexpectedly", "crashed")


def last_words(log: str, namespace: str, name: str) -> str:
    """The operator's last line about a camera that says something (not Kopf's routine ones)."""
    routine = ("Indexer", "is invoked", "Handling cycle", "Something has changed", "in progress", "patching",
               "Sleeping", "processed", "succeeded")
    said = [line for line in log.splitlines() if line.startswith(f"[{namespace}/{name}] ")
            and not any(word in line for word in routine)]
    return said[-1][:600] if said else "nothing"


def calm(operator: OperatorProcess) -> bool:
    """The operator runs and has logged no error (else fails, with the lines)."""
    assert operator.running, f"the operator exited:\n{operator.tail()}"
    errors = [line for line in operator.text().splitlines() if any(word in line for word in ERRORS)]
    assert not errors, "the operator logged errors:\n" + "\n".join(errors[:20])
    return True


def condition(status: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    return next((c for c in (status or {}).get("conditions") or [] if c.get("type") == kind), {})


def settles(expected: Outcome, status: Mapping[str, Any] | None, replicas: int) -> bool:
    """Whether a camera's status is where the model says it settles, with the conditions that explain it."""
    if not status or status.get("phase") != expected.phase or status.get("observedGeneration") != 1:
        return False
    degraded, ready = condition(status, "Degraded"), condition(status, "Ready")
    if expected.phase == "Degraded":
        return degraded.get("status") == "True" and bool(degraded.get("reason")) \
            and bool(degraded.get("message")) and expected.reason == degraded["reason"]
    if expected.phase == "Ready":
        return ready.get("status") == "True" and status.get("readyReplicas") == replicas
    return ready.get("reason") == "ScaledToZero" and degraded.get("status") == "False"


# ---------------------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Accepted:
    spec: dict[str, Any]  # as stored
    expected: Outcome


class Trial:
    """Creates each example in the namespace and checks at once whether the API server took it as the model
    says; remembers what it took."""

    def __init__(self, cams: Cameras) -> None:
        self.cams = cams
        self.accepted: dict[str, Accepted] = {}
        self.refused: Counter[str] = Counter()
        self.names = (f"c{n:x}" for n in count(1))  # unique, and first: long names' pods are named after it

    def ready_pods(self) -> int:
        return sum(a.spec["replicas"] for a in self.accepted.values() if a.expected.phase == "Ready")

    def check(self, camera: Camera) -> None:
        head = next(self.names)
        name = camera.name if camera.name is not None else head if camera.name_length <= len(head) + 1 \
            else f"{head}-{'x' * (camera.name_length - len(head) - 1)}"
        spec = camera.spec
        expected = refusals(name, spec)
        if not expected and outcome(stored(spec)).phase == "Ready" \
                and self.ready_pods() + stored(spec)["replicas"] > POD_BUDGET:
            spec = {**spec, "replicas": 0}
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualCamera", "metadata": {"name": name},
                "unknown": {"pruned": True}}
        if spec is not MISSING:
            body["spec"] = spec
        shown = f"name={name!r} spec={spec!r}"[:3000]
        try:
            created = self.cams.custom.create_namespaced_custom_object(GROUP, VERSION, self.cams.namespace,
                                                                       PLURAL, body)
        except ApiException as exc:
            message = json.loads(exc.body).get("message", "") if exc.body else ""
            assert exc.status == 422, f"{exc.status} {message}: {shown}"
            assert expected, f"a valid camera was refused: {message}\n{shown}"
            assert any(error.found_in(message) for error in expected), \
                f"the refusal does not name the field: expected one of {expected}\n{message}\n{shown}"
            self.refused[expected[0].path] += 1
            return
        assert not expected, f"an invalid camera was accepted, expected {expected}\n{shown}"
        differ = {key for key in created["spec"].keys() | stored(spec).keys()
                  if not same_json(created["spec"].get(key), stored(spec).get(key))}
        assert not differ and "unknown" not in created, \
            f"stored {[(key, created['spec'].get(key)) for key in differ]}, expected " \
            f"{[(key, stored(spec).get(key)) for key in differ]}\n{shown}"
        self.accepted[name] = Accepted(created["spec"], outcome(created["spec"]))

    def unsettled(self, seen: CameraWatch) -> dict[str, str]:
        latest = seen.latest()
        return {name: f"expected {a.expected}, now {latest.get(name)!r}, spec {a.spec!r}"[:800]
                for name, a in self.accepted.items()
                if not settles(a.expected, latest.get(name), a.spec["replicas"])}


def resource_versions(cams: Cameras) -> dict[str, str]:
    """Each camera's resourceVersion: any write to it, its status included, changes it."""
    listed = cams.custom.list_namespaced_custom_object(GROUP, VERSION, cams.namespace, PLURAL)["items"]
    return {c["metadata"]["name"]: c["metadata"]["resourceVersion"] for c in listed}


def generate(broken: str | None, check: Callable[[Camera], None]) -> None:
    """One run of the generator, breaking `broken` (None: nothing) in every example."""
    settings(max_examples=VALID_EXAMPLES if broken is None else BROKEN_EXAMPLES, deadline=None, database=None,
             derandomize=True,  # the same examples in every run: a failure in CI is one to replay
             phases=(Phase.generate,),  # no shrinking: each example is a camera in the cluster
             suppress_health_check=list(HealthCheck))(given(camera=cameras(broken))(check))()


@pytest.mark.timeout(600)
def test_generated_cameras_are_refused_or_settle_and_the_operator_stays_calm(
        cams: Cameras, operator_process: OperatorProcess, operator_kubeconfig: Path, tmp_path: Path) -> None:
    operator_process.stop()  # one operator at a time: this one serves the test's namespace, with debug logs
    own = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log",
                          args=("--namespace", cams.namespace, "-v"))
    own.start()
    pid = own.proc.pid if own.proc else None
    started = time.monotonic()
    trial = Trial(cams)
    try:
        with CameraWatch(cams).running() as seen:
            for seed in SEEDS:
                trial.check(seed)
            for broken in (None, *BREAKABLE):
                generate(broken, trial.check)
            created_in = time.monotonic() - started
            wait_until(lambda: seen.failure is not None or (calm(own) and not trial.unsettled(seen)),
                       timeout=120, interval=1.0,
                       what=lambda: "cameras to settle:\n" + "\n".join(
                           f"{name}: {why}\n  the operator's last word on it: "
                           f"{last_words(own.text(), cams.namespace, name)}"
                           for name, why in list(trial.unsettled(seen).items())[:10]))
            assert seen.failure is None, f"the watch failed: {seen.failure!r}"
            settled_in = time.monotonic() - started
            # The last writes of a burst land (a second pod's); then a quiet period, closed by an event that
            # must come after it: a new camera's status, written by the same operator.
            lull_until = time.monotonic() + 30  # a camera that never rests is named below
            while time.monotonic() - seen.events[-1].at < 2.0 and time.monotonic() < lull_until:
                time.sleep(0.5)
            versions, log_from = resource_versions(cams), len(own.text())
            time.sleep(QUIET_S)
            cams.create("quiet-marker", replicas=0)
            trial.accepted["quiet-marker"] = Accepted({"replicas": 0}, Outcome("ScaledToZero"))
            wait_until(lambda: not trial.unsettled(seen), timeout=30, what="the marker camera's status")
        assert seen.failure is None, f"the watch failed: {seen.failure!r}"
        after = resource_versions(cams)

        # never crashes
        assert calm(own) and own.proc is not None and own.proc.pid == pid and own.starts == 1
        log = own.text()

        # never loops on one object: after settling, no camera changes and no status is written
        moved = sorted(name for name, version in versions.items() if after.get(name) != version)
        assert not moved, f"cameras still changing after they settled: {moved[:20]}\n" + "\n".join(
            line for line in log[log_from:].splitlines()
            if any(f"/{name}]" in line for name in moved))[-4000:]
        quiet_log = log[log_from:log.index(f"[{cams.namespace}/quiet-marker] status:", log_from)]
        late = re.findall(r"^\[[^\]]+\] status: \w+$", quiet_log, re.M)
        assert not late, f"status written after the cameras settled: {late}"

        # never writes status more than once per change
        writes = status_writes(log, cams.namespace, set(trial.accepted))
        for name, a in trial.accepted.items():
            changes = [change.get("phase") for change in seen.changes(name)]
            assert writes[name] == changes, \
                f"{name}: the operator logged the status writes {writes[name]}, the watch saw the changes " \
                f"{changes}: a write that changed nothing\nspec {a.spec!r}"
            least, most = writes_allowed(a.expected, a.spec["replicas"])
            assert least <= len(writes[name]) <= most, \
                f"{name}: {len(writes[name])} status writes {writes[name]}, expected {least} to {most} " \
                f"for {a.expected} with {a.spec['replicas']} replicas\nspec {a.spec!r}"

        outcomes = Counter(str(a.expected) for a in trial.accepted.values())
        per_camera = Counter(len(phases) for phases in writes.values())
        print(f"\n{sum(trial.refused.values())} refused, {len(trial.accepted)} accepted: {dict(outcomes)}\n"
              f"refused at {dict(trial.refused.most_common())}\n"
              f"status writes per camera: {dict(sorted(per_camera.items()))}\n"
              f"created in {created_in:.0f}s, settled at {settled_in:.0f}s, "
              f"checked at {time.monotonic() - started:.0f}s")
    finally:
        cams.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, cams.namespace, PLURAL)
        try:  # the next tests need the node's room for pods
            wait_until(lambda: not cams.core.list_namespaced_pod(cams.namespace).items, timeout=60,
                       what="the cameras' pods to go")
        finally:
            own.stop()
            if not operator_process.running:
                operator_process.start()
