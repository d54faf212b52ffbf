"""The VirtualCamera CustomResourceDefinition, generated from the camera's settings model.

The camera's own settings (`drishti_stream.settings.Settings`) are the one source of truth: every setting a
user may choose becomes a spec field with the same type, range, enum and default; the few the operator decides
itself (`OPERATOR_MANAGED`) do not. A new setting must be placed in one group or the other, or the tests fail.

    python -m drishti_operator.crd                 # the CRD as YAML on stdout
    python -m drishti_operator.crd -o FILE [...]   # written to one or more files
    python -m drishti_operator.crd --check FILE    # exit 1 if FILE is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from drishti_stream.settings import (
    SYNTHETIC_ALLOWED,
    SYNTHETIC_LARGEST,
    SYNTHETIC_SIZED,
    SYNTHETIC_SMALLEST,
    Settings,
)

from drishti_operator import GROUP, KIND, PLURAL, VERSION

CRD_FILE = Path(__file__).with_name("crd.yaml")

# Settings the operator sets itself, and why; every other setting is a spec field.
OPERATOR_MANAGED: dict[str, str] = {
    "name": "the camera's metadata.name",
    "protocol_version": "v1.0, the one protocol the camera image speaks (its default)",
    "host": "0.0.0.0, so the Service reaches the pod",
    "cache_dir": "an emptyDir, since the root filesystem is read-only",
    "log_format": "json, for the cluster's log collection",
}

# Spec names that are not simply the camelCase of the setting.
RENAMED: dict[str, str] = {"video_path": "source"}

# Where a camera in Kubernetes means something more precise than the setting's own description.
DESCRIPTIONS: dict[str, str] = {
    "epoch": "Unix time of frame 0. Unset = the VirtualCamera's creation time, so frame ids survive pod "
             "restarts and rollouts and every replica sends the same frame at the same time.",
    "port": "Port the camera listens on and its Service exposes.",
}

# A source is a file path, a URL of a supported scheme, or the synthetic scene.
_URL = r"^[a-zA-Z][a-zA-Z0-9+.-]*://"
_NOT_A_FILE = r"^([a-zA-Z][a-zA-Z0-9+.-]*://|synthetic(:|$))"
SOURCE_MAX_LENGTH = 4096

# Kubernetes' quantity grammar, narrowed to what its parser takes and can afford: an exponent is an integer of
# at most two digits (the grammar allows `1e1.5`, which the parser refuses, and `1e9999999999`, which pins the
# API server's CPUs), and the number has at most 20 digits before and after its point.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]{1,20}(\.[0-9]{0,20})?)|(\.[0-9]{1,20}))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,2}))?$"
)
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def camel(field: str) -> str:
    """The spec name of a settings field: `jpeg_quality` -> `jpegQuality`, `video_path` -> `source`."""
    if field in RENAMED:
        return RENAMED[field]
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


def spec_fields() -> dict[str, str]:
    """Spec name -> settings field, for every setting a VirtualCamera may choose: the source, then the model's
    order."""
    chosen = [field for field in Settings.model_fields if field not in OPERATOR_MANAGED]
    chosen.sort(key=lambda field: field != "video_path")
    return {camel(field): field for field in chosen}


def _setting_schema(field: str) -> dict[str, Any]:
    """The OpenAPI v3 (structural) schema of one setting, translated from pydantic's JSON schema."""
    prop = Settings.model_json_schema(by_alias=False)["properties"][field]
    options = [option for option in prop.get("anyOf", [prop]) if option.get("type") != "null"]
    if len(options) != 1:
        raise ValueError(f"setting {field!r}: cannot express {prop!r} in a CRD schema")
    option = options[0]
    schema: dict[str, Any] = {}
    if "enum" in option:
        schema["type"] = option.get("type", "string")
        schema["enum"] = list(option["enum"])
    else:
        schema["type"] = option["type"]
    if option["type"] not in ("string", "integer", "number", "boolean"):
        raise ValueError(f"setting {field!r}: type {option['type']!r} has no CRD counterpart")
    schema["description"] = DESCRIPTIONS.get(field) or prop.get("description", "")
    for key in ("minimum", "maximum", "minLength", "maxLength", "pattern"):
        if key in option:
            schema[key] = option[key]
    # JSON schema 2020-12 writes exclusive bounds as numbers; OpenAPI v3.0 as booleans next to the bound.
    if "exclusiveMinimum" in option:
        schema["minimum"] = option["exclusiveMinimum"]
        schema["exclusiveMinimum"] = True
    if "exclusiveMaximum" in option:
        schema["maximum"] = option["exclusiveMaximum"]
        schema["exclusiveMaximum"] = True
    default = Settings.model_fields[field].default
    if default is not None:
        schema["default"] = default
    return schema


def _source_schema() -> dict[str, Any]:
    schema = _setting_schema("video_path")
    schema["maxLength"] = SOURCE_MAX_LENGTH
    schema.pop("default", None)  # required: a camera names its video (or `synthetic`) explicitly
    schema["x-kubernetes-validations"] = [
        {
            "rule": f"!self.matches('{_URL}') || self.matches('^(gs|https?)://')",
            "message": "source must be a file path, gs://bucket/object, http(s)://... or synthetic[:WxH]",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": "!self.startsWith('gs://') || self.matches('^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/.+$')",
            "message": "a gs:// source names a bucket and an object: gs://bucket/path/video.mp4",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": "!self.matches('^https?://') || self.matches('^https?://[^/?#\\\\s]+([/?#]\\\\S*)?$')",
            "message": "an http(s):// source needs a host: https://host/path/video.mp4",
            "reason": "FieldValueInvalid",
        },
        _synthetic_size_rule(),
    ]
    return schema


def _synthetic_size_rule() -> dict[str, str]:
    """`synthetic:WxH` within the sizes the camera draws (the settings' own bounds)."""
    width = f"int(self.substring({len('synthetic:')}).split('x')[0])"
    height = "int(self.split('x')[1])"
    (min_w, min_h), (max_w, max_h) = SYNTHETIC_SMALLEST, SYNTHETIC_LARGEST
    return {
        "rule": f"!self.startsWith('synthetic:') || self.matches('{SYNTHETIC_SIZED}') "
                f"&& {min_w} <= {width} && {width} <= {max_w} && {min_h} <= {height} && {height} <= {max_h}",
        "message": f"a synthetic source is {SYNTHETIC_ALLOWED}",
        "reason": "FieldValueInvalid",
    }


def _quantities(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        },
    }


def spec_schema() -> dict[str, Any]:
    """The schema of `.spec`: the settings, then what only a Kubernetes camera needs."""
    properties: dict[str, Any] = {}
    for name, field in spec_fields().items():
        properties[name] = _source_schema() if field == "video_path" else _setting_schema(field)
    properties.update({
        "replicas": {
            "type": "integer", "minimum": 0, "default": 1,
            "description": "Pods serving this camera; all replicas send the same frames at the same time.",
        },
        "image": {
            "type": "string", "minLength": 1, "maxLength": 1024, "pattern": r"^\S+$",
            "description": "Camera image; the operator's default (DRISHTI_OPERATOR_CAMERA_IMAGE) when unset.",
        },
        "imagePullPolicy": {
            "type": "string", "enum": ["Always", "IfNotPresent", "Never"],
            "description": "Pull policy of the camera image; Kubernetes' default when unset.",
        },
        "resources": {
            "type": "object",
            "description": "Compute resources of a camera pod; each of requests and limits replaces the "
                           "default.",
            "properties": {
                "requests": _quantities("Minimum resources, e.g. {cpu: 250m, memory: 512Mi}."),
                "limits": _quantities("Maximum resources, e.g. {memory: 1Gi}."),
            },
        },
        "volume": {
            "type": "object",
            "description": "A PersistentVolumeClaim holding the video, mounted read-only; relative file "
                           "paths in source are resolved under mountPath.",
            "required": ["claimName"],
            "properties": {
                "claimName": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": DNS_SUBDOMAIN,
                              "description": "Name of the PersistentVolumeClaim, in the camera's namespace."},
                "mountPath": {"type": "string", "default": "/videos", "pattern": "^/", "maxLength": 1024,
                              "description": "Where the claim is mounted in the pod."},
                "subPath": {"type": "string", "maxLength": 1024, "pattern": "^[^/]",
                            "description": "A sub-directory of the claim to mount instead of its root."},
            },
        },
        "store": {
            "type": "object",
            "description": "Where the camera keeps its frame store: every frame of the video encoded once, "
                           "at most cacheBudgetMb. Unset: an emptyDir of the pod, limited to cacheBudgetMb "
                           "plus 64Mi, filled again by every new pod. A claim keeps it across restarts and "
                           "rollouts, and is filled once for all replicas that mount it.",
            "required": ["claimName"],
            "properties": {
                "claimName": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": DNS_SUBDOMAIN,
                              "description": "Name of a PersistentVolumeClaim in the camera's namespace, "
                                             "mounted read-write (ReadWriteMany to share it between "
                                             "replicas on several nodes)."},
            },
        },
        "tracing": {
            "type": "object",
            "description": "OpenTelemetry traces of the camera (a span per frame produced, with its id).",
            "properties": {
                "otlpEndpoint": {
                    "type": "string", "maxLength": 2048, "pattern": r"^https?://[^\s/]+(/\S*)?$",
                    "description": "OTLP/HTTP endpoint the camera exports its spans to "
                                   "(OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://jaeger.tracing.svc:4318.",
                },
            },
        },
        "gcsCredentials": {
            "type": "object",
            "description": "A Secret holding a Google service-account key, for a gs:// source "
                           "(omit it to use the pod's workload identity).",
            "required": ["secretName"],
            "properties": {
                "secretName": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": DNS_SUBDOMAIN,
                               "description": "Name of the Secret, in the camera's namespace."},
                "key": {"type": "string", "default": "key.json", "minLength": 1, "maxLength": 253,
                        "pattern": r"^[-._a-zA-Z0-9]+$",
                        "description": "The Secret's key that holds the JSON key file."},
            },
        },
    })
    return {
        "type": "object",
        "required": ["source"],
        "properties": properties,
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.gcsCredentials) || self.source.startsWith('gs://')",
                "message": "gcsCredentials applies only to a gs:// source",
                "fieldPath": ".gcsCredentials",
                "reason": "FieldValueInvalid",
            },
            {
                "rule": f"!has(self.volume) || !self.source.matches('{_NOT_A_FILE}')",
                "message": "volume applies only to a file path source",
                "fieldPath": ".volume",
                "reason": "FieldValueInvalid",
            },
            {
                "rule": f"has(self.volume) || self.source == '' || self.source.startsWith('/') "
                        f"|| self.source.matches('{_NOT_A_FILE}')",
                "message": "a relative file path is resolved under volume.mountPath: set volume, "
                           "or give an absolute path",
                "fieldPath": ".source",
                "reason": "FieldValueInvalid",
            },
        ],
    }


def _condition_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string", "description": "Ready, Progressing or Degraded."},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string", "description": "One CamelCase word: why the status is what it is."},
            "message": {"type": "string", "description": "A human explanation of the reason."},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "minimum": 0},
        },
    }


def status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer",
                                   "description": "The spec generation the status describes."},
            "phase": {"type": "string",
                      "enum": ["Pending", "Progressing", "Ready", "Degraded", "ScaledToZero"],
                      "description": "A one-word summary of the conditions."},
            "conditions": {
                "type": "array",
                "items": _condition_schema(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "replicas": {"type": "integer", "description": "Pods of the camera (for the scale subresource)."},
            "readyReplicas": {"type": "integer", "description": "Pods that serve frames."},
            "selector": {"type": "string",
                         "description": "Label selector of the pods (for the scale subresource)."},
            "serviceName": {"type": "string", "description": "The camera's Service."},
            "url": {"type": "string", "description": "Where consumers in the cluster stream from."},
            "epoch": {"type": "number", "description": "Unix time of frame 0, the same for every pod."},
        },
    }


def printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Source", "type": "string", "jsonPath": ".spec.source"},
        {"name": "FPS", "type": "integer", "jsonPath": ".spec.fps"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "priority": 1},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas", "priority": 1},
        {"name": "URL", "type": "string", "jsonPath": ".status.url"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def name_rule() -> dict[str, Any]:
    """The camera's name names its Service and is its DRISHTI_NAME: a DNS-1035 label within the setting's
    length."""
    longest = next(m.max_length for m in Settings.model_fields["name"].metadata if hasattr(m, "max_length"))
    return {
        "rule": f"self.metadata.name.size() <= {longest} "
                "&& self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "message": f"name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
                   f"letter, at most {longest} characters): it names the camera's Service",
        "reason": "FieldValueInvalid",
        "fieldPath": ".metadata.name",  # valid only because the schema declares metadata.name
    }


def build_crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "drishti-operator", "app.kubernetes.io/part-of": "drishti"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "virtualcamera",
                "shortNames": ["vcam"],
                "categories": ["drishti"],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "additionalPrinterColumns": printer_columns(),
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A video replayed as a live camera: ws://<name>.<namespace>.svc:<port>/ws/stream.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
                        "spec": spec_schema(),
                        "status": status_schema(),
                    },
                    "x-kubernetes-validations": [name_rule()],
                }},
            }],
        },
    }


HEADER = (
    "# Generated by `python -m drishti_operator.crd` from drishti_stream.settings; do not edit by hand.\n"
)


def render_crd_yaml() -> str:
    return HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drishti_operator.crd",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("-o", "--output", action="append", type=Path, default=[],
                        help="write the CRD to this file (repeatable); stdout when none")
    parser.add_argument("--check", action="append", type=Path, default=[],
                        help="exit 1 unless this file holds exactly the generated CRD (repeatable)")
    args = parser.parse_args(argv)
    text = render_crd_yaml()
    stale = [path for path in args.check if not path.is_file() or path.read_text() != text]
    for path in stale:
        print(f"{path}: stale, regenerate it with `python -m drishti_operator.crd -o {path}`",
              file=sys.stderr)
    for path in args.output:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not args.output and not args.check:
        sys.stdout.write(text)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
