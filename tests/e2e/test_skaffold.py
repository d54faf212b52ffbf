"""skaffold.yaml and the kind config: schema-valid, consistent with the Dockerfile and the chart, rendered by
the real skaffold, and the dev loop's build-and-deploy run for real against a fresh control plane.

What cannot run here is kind itself (its node image comes from a registry): hack/kind-config.yaml is checked
by kind's own config loader, which accepts it and then stops at pulling the node image.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from hack.cluster.testing import wait_until
from tests import readme
from tests.chart.tools import CHART, REPO, run
from tests.images import removing_new_tags

SKAFFOLD = REPO / "skaffold.yaml"
KIND_CONFIG = REPO / "hack" / "kind-config.yaml"


def config() -> dict:
    return yaml.safe_load(SKAFFOLD.read_text())


def schema_for(api_version: str) -> dict:
    path = REPO / "hack" / "schemas" / f"skaffold-{api_version.split('/', 1)[1]}.json"
    assert path.is_file(), (f"no vendored schema for {api_version} "
                            "(hack/schemas/README.md says how to add one)")
    return json.loads(path.read_text())


def test_skaffold_yaml_is_valid_against_the_published_schema() -> None:
    doc = config()
    assert re.fullmatch(r"skaffold/v4beta\d+", doc["apiVersion"])
    errors = sorted(jsonschema.Draft7Validator(schema_for(doc["apiVersion"])).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors)


def test_vendored_schema_is_the_newest_v4beta_and_refuses_typos() -> None:
    schemas = sorted(int(p.stem.rsplit("beta", 1)[1])
                     for p in (REPO / "hack" / "schemas").glob("skaffold-v4beta*.json"))
    assert config()["apiVersion"] == f"skaffold/v4beta{schemas[-1]}"
    doc = config()
    doc["build"]["artifacts"][0]["docker"]["targett"] = "service"
    assert list(jsonschema.Draft7Validator(schema_for(doc["apiVersion"])).iter_errors(doc))


def test_both_images_come_from_the_one_dockerfile() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"(?m)^ARG BASE_IMAGE=", dockerfile)
    artifacts = {a["image"]: a for a in config()["build"]["artifacts"]}
    assert sorted(artifacts) == ["drishti/operator", "drishti/stream"]
    for image, target in (("drishti/stream", "service"), ("drishti/operator", "operator")):
        docker = artifacts[image]["docker"]
        assert (docker["dockerfile"], docker["target"]) == ("Dockerfile", target)
        assert re.search(rf"(?m)^FROM \S+ AS {target}$", dockerfile), f"no stage {target} in the Dockerfile"
        assert "BASE_IMAGE" in docker["buildArgs"]
        # the Dockerfile installs from build/wheelhouse: the hook fills it before each build
        assert ["hack/docker/wheelhouse.sh", "build/wheelhouse"] in \
            [hook["command"] for hook in artifacts[image]["hooks"]["before"]]


def test_the_chart_gets_the_built_images(helm_bin) -> None:
    (release,) = config()["deploy"]["helm"]["releases"]
    assert REPO / release["chartPath"] == CHART
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    templates = release["setValueTemplates"]
    for key in templates:
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, (
                f"setValueTemplates: {key} is not a value of the chart")
            node = node[part]
    assert templates["operator.image.tag"] == "{{.IMAGE_TAG_drishti_operator}}"
    assert templates["camera.image.tag"] == "{{.IMAGE_TAG_drishti_stream}}"
    for path in release.get("valuesFiles", []):
        run([helm_bin, "lint", CHART, "--strict", "-f", REPO / path])
    # the port-forwarded Service is a camera of those values
    cameras = [cam["name"] for path in release.get("valuesFiles", [])
               for cam in yaml.safe_load((REPO / path).read_text()).get("cameras", [])]
    for forward in config().get("portForward", []):
        assert forward["resourceName"] in cameras


def skaffold_env(helm3_bin: Path, kubectl_bin: Path, **extra: str) -> dict[str, str]:
    """skaffold finds helm and kubectl on PATH; its helm deployer needs helm 3."""
    path = os.pathsep.join([str(helm3_bin.parent), str(kubectl_bin.parent), os.environ["PATH"]])
    return {**os.environ, "PATH": path, "SKAFFOLD_UPDATE_CHECK": "false", "SKAFFOLD_INTERACTIVE": "false",
            **extra}


def test_readme_puts_the_tools_on_path(skaffold_bin, helm3_bin, kind_bin) -> None:
    """The README's line that puts tools.sh's skaffold, helm 3 and kind first on PATH."""
    (line,) = [c for c in readme.commands(readme.code_blocks("`skaffold dev` on kind")[0])
               if c.startswith("for tool in")]
    out = run(["bash", "-c", f"{line}; skaffold version; helm version --short; kind version"],
              env={**os.environ, "SKAFFOLD_UPDATE_CHECK": "false"}).stdout.split()
    assert out[0] == "v2.16.1" and out[1].startswith("v3.") and out[2] == "kind"


def test_skaffold_diagnose_reads_the_config(skaffold_bin) -> None:
    out = run([skaffold_bin, "diagnose", "--yaml-only"],
              env={**os.environ, "SKAFFOLD_UPDATE_CHECK": "false"}).stdout
    parsed = yaml.safe_load(out)
    assert parsed["apiVersion"] == config()["apiVersion"]
    assert [a["image"] for a in parsed["build"]["artifacts"]] == ["drishti/stream", "drishti/operator"]


def test_skaffold_render_sets_both_images(skaffold_bin, helm3_bin, kubectl_bin, tmp_path) -> None:
    builds = tmp_path / "builds.json"
    builds.write_text(json.dumps({"builds": [
        {"imageName": "drishti/stream", "tag": "drishti/stream:e2e-stream"},
        {"imageName": "drishti/operator", "tag": "drishti/operator:e2e-operator"},
    ]}))
    out = run([skaffold_bin, "render", f"--build-artifacts={builds}", "--digest-source=tag",
               "--offline=true"], env=skaffold_env(helm3_bin, kubectl_bin)).stdout
    objects = [doc for doc in yaml.safe_load_all(out) if doc]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "drishti/operator:e2e-operator"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DRISHTI_OPERATOR_CAMERA_IMAGE"] == "drishti/stream:e2e-stream"
    assert deployment["metadata"]["namespace"] == "drishti-system"
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "VirtualCamera"] == ["lobby"]


def test_helm4_is_not_enough_for_skaffold(skaffold_bin, helm_bin, kubectl_bin) -> None:
    """Why the tests (and the README) use helm 3 with skaffold: skaffold v2.16's helm deployer refuses
    helm 4."""
    env = {**os.environ, "PATH": os.pathsep.join([str(helm_bin.parent), str(kubectl_bin.parent),
                                                   os.environ["PATH"]]), "SKAFFOLD_UPDATE_CHECK": "false"}
    result = run([skaffold_bin, "render", "--digest-source=none", "--offline=true"], env=env, check=False)
    assert result.returncode != 0
    assert "helm version" in result.stdout + result.stderr


@pytest.fixture
def fresh_control_plane():
    """A control plane of its own (like a new kind cluster): the chart's release name and namespace are fixed
    in skaffold.yaml, and the session's cluster holds objects of the same names from the manifests' tests."""
    from hack.cluster import build
    from hack.cluster.controlplane import ephemeral

    build.ensure_built()
    plane = ephemeral()
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.mark.docker
@pytest.mark.cluster
@pytest.mark.timeout(2400)  # its own bounded waits: base image 900 s, skaffold run 900 s, delete 300 s
def test_skaffold_run_builds_both_images_and_deploys_the_chart(docker_engine, fresh_control_plane,
                                                               skaffold_bin, helm3_bin, kubectl_bin) -> None:
    """The dev loop without kind: `skaffold run` builds both targets with Docker and installs the chart with
    the built images onto a real API server; then `skaffold delete` removes it."""
    base = os.environ.get("DRISHTI_BASE_IMAGE") or run([REPO / "hack" / "docker" / "base-image.sh"],
                                                       timeout=900).stdout.strip().splitlines()[-1]
    env = skaffold_env(helm3_bin, kubectl_bin, KUBECONFIG=str(fresh_control_plane.kubeconfig),
                       DRISHTI_BASE_IMAGE=base)
    if run(["docker", "buildx", "version"], check=False).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"
    # --cache-artifacts=false: build for real every time; --no-prune: without it, skaffold then deletes every
    # older image of the same repositories (drishti/stream:dev from build-images.sh included)
    with removing_new_tags():
        run([skaffold_bin, "run", "--port-forward=false", "--status-check=true", "--cache-artifacts=false",
             "--no-prune=true"],
            env=env, timeout=900)
        try:
            check_the_release(env, kubectl_bin)
        finally:
            run([skaffold_bin, "delete"], env=env, timeout=300)
    wait_until(lambda: run([kubectl_bin, "get", "deployment", "-n", "drishti-system", "-o", "name"],
                           env=env).stdout.strip() == "", timeout=60, what="the release removed")


def check_the_release(env: dict[str, str], kubectl_bin) -> None:
    """The release skaffold installed runs the images it built."""
    deployment = json.loads(run([kubectl_bin, "get", "deployment", "drishti-operator", "-n", "drishti-system",
                                 "-o", "json"], env=env).stdout)
    assert deployment["status"].get("readyReplicas") == 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    operator_image = container["image"]
    camera_image = {e["name"]: e.get("value") for e in container["env"]}["DRISHTI_OPERATOR_CAMERA_IMAGE"]
    assert operator_image.startswith("drishti/operator:") and camera_image.startswith("drishti/stream:")
    # both are the images skaffold just built, in the local engine (kind would get them loaded)
    for image in (operator_image, camera_image):
        run(["docker", "image", "inspect", image])
    assert run(["docker", "run", "--rm", operator_image, "--version"]).stdout.startswith("drishti-operator ")
    cameras = json.loads(run([kubectl_bin, "get", "vcam", "-n", "drishti-system", "-o", "json"],
                             env=env).stdout)["items"]
    assert [cam["metadata"]["name"] for cam in cameras] == ["lobby"]


@pytest.mark.docker
@pytest.mark.timeout(900)  # where a registry is reachable, kind really creates the cluster
def test_kind_accepts_the_cluster_config(docker_engine, kind_bin, tmp_path) -> None:
    """kind loads and validates hack/kind-config.yaml, then needs its node image, which no registry serves
    here: the failure must be the image pull, not the config (a config with a typo fails at decoding, as
    checked)."""
    name = "drishti-config-check"
    try:
        result = run([kind_bin, "create", "cluster", "--config", KIND_CONFIG, "--name", name, "--wait", "1s"],
                     check=False, timeout=600)
        output = result.stdout + result.stderr
        assert "unable to decode config" not in output, output
        if result.returncode == 0:  # a machine that reaches kind's registry: the cluster really came up
            nodes = run([kind_bin, "get", "nodes", "--name", name]).stdout.split()
            assert nodes == [f"{name}-control-plane"], nodes
        else:
            assert "Ensuring node image" in output and "failed to pull image" in output, output
        run([kind_bin, "delete", "cluster", "--name", name], check=False, timeout=120)
        broken = tmp_path / "kind.yaml"
        broken.write_text(KIND_CONFIG.read_text().replace("role: control-plane", "rol: control-plane"))
        result = run([kind_bin, "create", "cluster", "--config", broken, "--name", name], check=False)
        assert result.returncode != 0 and "unable to decode config" in result.stderr, result.stderr
    finally:
        run([kind_bin, "delete", "cluster", "--name", name], check=False, timeout=120)
    assert yaml.safe_load(KIND_CONFIG.read_text())["name"] == "drishti"
