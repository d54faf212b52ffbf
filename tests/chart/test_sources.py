"""The chart's derived files are what their sources generate: the CRD, the operator's RBAC rules, the camera
spec of values.schema.json and the versions. `make manifests` regenerates all of them."""

from __future__ import annotations

import json
import tomllib

import yaml
from drishti_operator import crd
from drishti_stream.settings import Settings

from hack.delivery import generate
from tests.chart.tools import CHART, REPO, one, template

REGENERATE = "out of date: run `make manifests`"


def test_crd_is_the_generated_one() -> None:
    assert (CHART / "crds" / generate.CRD_NAME).read_text() == crd.render_crd_yaml(), REGENERATE


def test_crds_dir_holds_only_the_crd() -> None:
    assert sorted(path.name for path in (CHART / "crds").iterdir()) == [generate.CRD_NAME]


def test_rbac_file_is_the_operators() -> None:
    copy = list(yaml.safe_load_all((CHART / "files" / "operator-rbac.yaml").read_text()))
    assert copy == [d for d in yaml.safe_load_all(generate.RBAC_SOURCE.read_text()) if d], REGENERATE


def _operator_rules() -> list[dict]:
    docs = list(yaml.safe_load_all(generate.RBAC_SOURCE.read_text()))
    return next(doc for doc in docs if doc["kind"] == "ClusterRole")["rules"]


def test_cluster_scope_grants_exactly_the_operators_rules(helm_bin) -> None:
    objects = template(helm_bin, {"rbac": {"scope": "cluster"}})
    assert one(objects, "ClusterRole")["rules"] == _operator_rules()


def test_namespaced_scope_splits_the_operators_rules(helm_bin) -> None:
    objects = template(helm_bin, {"rbac": {"scope": "namespaced"}})
    role = one(objects, "Role")
    cluster = one(objects, "ClusterRole")
    assert (sorted(map(json.dumps, role["rules"] + cluster["rules"]))
            == sorted(map(json.dumps, _operator_rules())))
    assert {res for rule in cluster["rules"] for res in rule["resources"]} == {"customresourcedefinitions",
                                                                             "namespaces"}


def test_values_schema_camera_spec_is_generated_from_the_crd() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["definitions"]["cameraSpec"] == generate.camera_spec_schema(), REGENERATE
    assert set(schema["definitions"]["cameraSpec"]["properties"]) == set(crd.spec_schema()["properties"])


def test_chart_version_is_the_projects() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert (chart["version"], chart["appVersion"]) == (version, version), REGENERATE


def test_chart_camera_port_default_is_the_settings(helm_bin) -> None:
    """The chart computes camera URLs (helm test, NOTES) with the camera's default port when spec.port is
    unset."""
    objects = template(helm_bin, {"cameras": [{"name": "lobby", "spec": {"source": "synthetic"}}]},
                       "--show-only", "templates/tests/test-stream.yaml")
    script = one(objects, "Job")["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert f"ws://lobby.cams.svc:{Settings.model_fields['port'].default}/ws/stream" in script
