"""The VirtualCamera CRD against the camera's settings model: one source of truth, checked both ways."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import annotated_types
import pytest
import yaml
from drishti_operator import crd
from drishti_stream.settings import Settings, env_name
from pydantic import BaseModel, Field


def spec_properties() -> dict:
    return (crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            ["properties"]["spec"]["properties"])


def test_committed_crd_file_is_generated_from_the_model() -> None:
    assert crd.CRD_FILE.read_text() == crd.render_crd_yaml(), (
        "operator/drishti_operator/crd.yaml is stale: run `python -m drishti_operator.crd -o "
        "operator/drishti_operator/crd.yaml`"
    )


def test_every_setting_is_a_spec_field_or_set_by_the_operator() -> None:
    fields = set(Settings.model_fields)
    assert set(crd.OPERATOR_MANAGED) <= fields, "OPERATOR_MANAGED names a setting the model no longer has"
    chosen = set(crd.spec_fields().values())
    assert chosen | set(crd.OPERATOR_MANAGED) == fields
    assert not chosen & set(crd.OPERATOR_MANAGED)


def _bounds(field: str) -> dict[str, float]:
    """The numeric bounds as pydantic declares them (read from the field, not from its JSON schema)."""
    found: dict[str, float] = {}
    for item in Settings.model_fields[field].metadata:
        for attr, key in (("ge", "ge"), ("gt", "gt"), ("le", "le"), ("lt", "lt"),
                          ("min_length", "min_length"), ("max_length", "max_length")):
            if isinstance(item, annotated_types.BaseMetadata) and getattr(item, attr, None) is not None:
                found[key] = getattr(item, attr)
    return found


@pytest.mark.parametrize("spec_name,field", list(crd.spec_fields().items()))
def test_spec_field_has_the_settings_range_and_default(spec_name: str, field: str) -> None:
    prop = spec_properties()[spec_name]
    bounds = _bounds(field)
    if "ge" in bounds:
        assert prop["minimum"] == bounds["ge"] and not prop.get("exclusiveMinimum")
    if "gt" in bounds:
        assert prop["minimum"] == bounds["gt"] and prop["exclusiveMinimum"] is True
    if "le" in bounds:
        assert prop["maximum"] == bounds["le"] and not prop.get("exclusiveMaximum")
    if "min_length" in bounds:
        assert prop["minLength"] == bounds["min_length"]
    if "max_length" in bounds:
        assert prop["maxLength"] == bounds["max_length"]
    if not bounds:
        assert not {"minimum", "maximum"} & set(prop)
    default = Settings.model_fields[field].default
    if field == "video_path":
        assert "default" not in prop  # a camera must name its source
    elif default is None:
        assert "default" not in prop
    else:
        assert prop["default"] == default


def test_types_and_enums_follow_the_model() -> None:
    props = spec_properties()
    assert props["fps"]["type"] == "integer"
    assert props["loop"]["type"] == "boolean"
    assert props["epoch"]["type"] == "number"
    assert props["sendTimeout"]["type"] == "number"
    assert props["logLevel"]["enum"] == ["debug", "info", "warning", "error", "critical"]


def test_issue_ranges() -> None:
    """The ranges users are promised: fps 1..120 (optional), jpegQuality 1..100 default 85, loop default
    true."""
    props = spec_properties()
    assert (props["fps"]["minimum"], props["fps"]["maximum"]) == (1, 120) and "default" not in props["fps"]
    assert (props["jpegQuality"]["minimum"], props["jpegQuality"]["maximum"]) == (1, 100)
    assert props["jpegQuality"]["default"] == 85
    assert props["loop"]["default"] is True
    assert props["replicas"]["default"] == 1
    assert props["source"]["minLength"] == 1


def test_crd_shape() -> None:
    doc = yaml.safe_load(crd.CRD_FILE.read_text())
    assert doc["metadata"]["name"] == "virtualcameras.drishti.io"
    spec = doc["spec"]
    assert spec["scope"] == "Namespaced" and spec["names"]["shortNames"] == ["vcam"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "status" in version["subresources"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Source"] == ".spec.source" and columns["FPS"] == ".spec.fps"
    assert columns["URL"] == ".status.url" and columns["Age"] == ".metadata.creationTimestamp"
    assert "Ready" in columns
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["required"] == ["source"]
    status = schema["properties"]["status"]["properties"]
    for key in ("observedGeneration", "phase", "conditions", "readyReplicas", "serviceName", "url", "epoch"):
        assert key in status
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert schema["x-kubernetes-validations"][0]["rule"].startswith("self.metadata.name.size() <= 63")


def test_cli_writes_and_checks(tmp_path, capsys) -> None:
    target = tmp_path / "crds" / "virtualcameras.yaml"
    assert crd.main(["-o", str(target)]) == 0
    assert target.read_text() == crd.render_crd_yaml()
    assert crd.main(["--check", str(target)]) == 0
    target.write_text(target.read_text().replace("maximum: 120", "maximum: 60"))
    assert crd.main(["--check", str(target)]) == 1
    assert "stale" in capsys.readouterr().err
    assert crd.main([]) == 0
    assert capsys.readouterr().out == crd.render_crd_yaml()


def test_env_names_are_the_settings_env_names() -> None:
    from drishti_operator.render import camera_env

    camera = {"metadata": {"name": "c", "namespace": "n", "uid": "u",
                           "creationTimestamp": "2026-01-01T00:00:00Z"},
              "spec": {"source": "synthetic", "fps": 10, "maxWidth": 640}}
    names = {item["name"] for item in camera_env(camera)}
    assert {env_name(field) for field in ("video_path", "fps", "max_width", "epoch", "name")} <= names


class Unusual(BaseModel):
    """Settings a CRD can or cannot express, to check the translation beyond today's model."""

    below: float = Field(1.0, lt=10, description="A number below ten.")
    above: int = Field(2, gt=0, le=5)
    optional: int | None = None
    level: Literal["low", "high"] = "low"
    tags: list[str] = []
    either: int | str = 1
    nothing: None = None
    aliased: int = Field(3, alias="ALIASED", ge=0)


def test_setting_schema_translates_exclusive_bounds_enums_and_optionals(monkeypatch) -> None:
    monkeypatch.setattr(crd, "Settings", Unusual)
    assert crd._setting_schema("below") == {"type": "number", "description": "A number below ten.",
                                            "maximum": 10, "exclusiveMaximum": True, "default": 1.0}
    assert crd._setting_schema("above") == {"type": "integer", "description": "", "maximum": 5,
                                            "minimum": 0, "exclusiveMinimum": True, "default": 2}
    assert crd._setting_schema("optional") == {"type": "integer", "description": ""}
    assert crd._setting_schema("aliased") == {"type": "integer", "description": "", "minimum": 0,
                                              "default": 3}
    assert crd._setting_schema("level") == {"type": "string", "enum": ["low", "high"], "description": "",
                                            "default": "low"}


@pytest.mark.parametrize("field,problem", [("tags", "type 'array' has no CRD counterpart"),
                                           ("either", "cannot express"), ("nothing", "cannot express")])
def test_a_setting_the_crd_cannot_express_stops_the_generation(monkeypatch, field: str, problem: str) -> None:
    monkeypatch.setattr(crd, "Settings", Unusual)
    with pytest.raises(ValueError, match=f"^setting '{field}': .*{problem}"):
        crd._setting_schema(field)


def test_spec_names_are_camel_case_and_the_source_comes_first() -> None:
    assert crd.camel("jpeg_quality") == "jpegQuality" and crd.camel("cache_budget_mb") == "cacheBudgetMb"
    assert crd.camel("fps") == "fps" and crd.camel("video_path") == "source"
    assert list(crd.spec_fields())[0] == "source"
    chosen = [field for field in Settings.model_fields if field not in crd.OPERATOR_MANAGED]
    assert list(crd.spec_fields().values()) == ["video_path"] + [f for f in chosen if f != "video_path"]


class Reordered(BaseModel):
    """Settings named in no alphabetical order, the source in the middle."""

    zoom: int = 1
    video_path: str = "synthetic"
    aperture: int = 2
    name: str = "cam"  # set by the operator


def test_the_source_comes_first_then_the_models_order(monkeypatch) -> None:
    monkeypatch.setattr(crd, "Settings", Reordered)
    assert list(crd.spec_fields().items()) == [("source", "video_path"), ("zoom", "zoom"),
                                                ("aperture", "aperture")]
    properties = crd.spec_schema()["properties"]  # only the source gets the source's rules
    assert properties["zoom"] == {"type": "integer", "description": "", "default": 1}
    assert "x-kubernetes-validations" in properties["source"]


def test_the_printer_columns_kubectl_shows() -> None:
    columns = {c["name"]: (c["type"], c["jsonPath"], c.get("priority", 0)) for c in crd.printer_columns()}
    shown = [name for name, (_, _, wide) in columns.items() if not wide]
    assert shown == ["Source", "FPS", "Ready", "URL", "Age"]
    assert [name for name, (_, _, wide) in columns.items() if wide == 1] == ["Phase", "Replicas"]  # -o wide
    assert columns["Source"][:2] == ("string", ".spec.source")
    assert columns["FPS"][:2] == ("integer", ".spec.fps")
    assert columns["Ready"][:2] == ("string", '.status.conditions[?(@.type=="Ready")].status')
    assert columns["URL"][:2] == ("string", ".status.url")
    assert columns["Age"][:2] == ("date", ".metadata.creationTimestamp")
    assert columns["Phase"][:2] == ("string", ".status.phase")
    assert columns["Replicas"][:2] == ("integer", ".status.readyReplicas")


def test_the_cli_writes_every_output_and_checks_every_file(tmp_path, capsys) -> None:
    deep, beside = tmp_path / "a" / "b" / "crd.yaml", tmp_path / "a" / "b" / "copy.yaml"
    assert crd.main(["-o", str(deep), "-o", str(beside)]) == 0
    assert deep.read_text() == beside.read_text() == crd.render_crd_yaml()
    assert capsys.readouterr() == ("", "")  # files only, nothing on stdout
    assert crd.main(["--check", str(deep), "--check", str(beside)]) == 0
    assert capsys.readouterr() == ("", "")
    missing = tmp_path / "missing.yaml"
    assert crd.main(["--check", str(deep), "--check", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == (f"{missing}: stale, regenerate it with `python -m drishti_operator.crd "
                                 f"-o {missing}`\n")
    beside.write_text(beside.read_text()[:1000])  # cut short, as by an interrupted write
    assert crd.main(["--check", str(beside)]) == 1


def test_the_cli_describes_itself(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        crd.main(["--help"])
    assert done.value.code == 0
    words = " ".join(capsys.readouterr().out.split())  # as argparse wraps it
    assert "The VirtualCamera CustomResourceDefinition, generated from the camera's settings model. " in words


def test_python_m_prints_the_crd_and_checks_a_file(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["service", "operator"])}
    root = Path(__file__).resolve().parents[2]
    printed = subprocess.run([sys.executable, "-m", "drishti_operator.crd"], cwd=root, env=env,
                             capture_output=True, text=True, check=False)
    assert printed.returncode == 0 and printed.stdout == crd.render_crd_yaml()
    stale = tmp_path / "stale.yaml"
    stale.write_text("old\n")
    checked = subprocess.run([sys.executable, "-m", "drishti_operator.crd", "--check", str(stale)], cwd=root,
                             env=env, capture_output=True, text=True, check=False)
    assert checked.returncode == 1 and "stale" in checked.stderr
