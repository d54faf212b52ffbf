"""The VirtualCamera CRD against the camera's settings model: one source of truth, checked both ways."""

from __future__ import annotations

import annotated_types
import pytest
import yaml
from drishti_operator import crd
from drishti_stream.settings import Settings, env_name


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
