"""The pure rendering of a camera's Deployment and Service: no cluster needed."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import pytest
from drishti_operator import render
from drishti_operator.render import HASH_ANNOTATION, InvalidSpec, render_deployment, render_service
from drishti_stream.settings import load_settings

CREATED = "2026-03-04T05:06:07Z"
CREATED_UNIX = int(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp())


def camera(**spec) -> dict:
    return {
        "apiVersion": "drishti.io/v1alpha1",
        "kind": "VirtualCamera",
        "metadata": {"name": "gate-1", "namespace": "site-a", "uid": "0c3e-uid", "generation": 1,
                     "creationTimestamp": CREATED, "labels": {"team": "crowd"}},
        "spec": {"source": "synthetic", "loop": True, "jpegQuality": 85, "port": 8000, "replicas": 1, **spec},
    }


def env_of(deployment: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(deployment)["env"]}


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def pod_hash(deployment: dict) -> str:
    return deployment["spec"]["template"]["metadata"]["annotations"][HASH_ANNOTATION]


def test_names_labels_and_owner() -> None:
    deployment, service = render.render(camera())
    for child in (deployment, service):
        meta = child["metadata"]
        assert meta["name"] == "gate-1" and meta["namespace"] == "site-a"
        assert meta["labels"]["app.kubernetes.io/name"] == "drishti-stream"
        assert meta["labels"]["app.kubernetes.io/instance"] == "gate-1"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "drishti-operator"
        assert meta["labels"]["team"] == "crowd"  # the camera's own labels propagate
        assert meta["ownerReferences"] == [{
            "apiVersion": "drishti.io/v1alpha1", "kind": "VirtualCamera", "name": "gate-1", "uid": "0c3e-uid",
            "controller": True, "blockOwnerDeletion": True,
        }]
    selector = {"app.kubernetes.io/name": "drishti-stream", "app.kubernetes.io/instance": "gate-1"}
    assert deployment["spec"]["selector"] == {"matchLabels": selector}
    assert service["spec"]["selector"] == selector
    assert "team" not in deployment["spec"]["template"]["metadata"]["labels"]


def test_env_from_spec() -> None:
    env = env_of(render_deployment(camera(fps=15, loop=False, jpegQuality=70, port=9000)))
    assert env["DRISHTI_VIDEO_PATH"] == "synthetic"
    assert env["DRISHTI_FPS"] == "15"
    assert env["DRISHTI_LOOP"] == "false"
    assert env["DRISHTI_JPEG_QUALITY"] == "70"
    assert env["DRISHTI_PORT"] == "9000"
    assert env["DRISHTI_NAME"] == "gate-1"
    assert env["DRISHTI_EPOCH"] == str(CREATED_UNIX)
    assert env["DRISHTI_CACHE_DIR"] == render.CACHE_DIR
    assert env["DRISHTI_LOG_FORMAT"] == "json"
    assert env["DRISHTI_HOST"] == "0.0.0.0"


def test_unset_fps_is_omitted_and_defaults_are_filled() -> None:
    body = camera()
    for key in ("loop", "jpegQuality", "port"):
        del body["spec"][key]
    env = env_of(render_deployment(body))
    assert "DRISHTI_FPS" not in env and "DRISHTI_MAX_WIDTH" not in env
    assert (env["DRISHTI_LOOP"] == "true" and env["DRISHTI_JPEG_QUALITY"] == "85"
            and env["DRISHTI_PORT"] == "8000")


def test_fixed_epoch_wins_over_creation_time() -> None:
    assert env_of(render_deployment(camera(epoch=1700000000)))["DRISHTI_EPOCH"] == "1700000000"
    assert env_of(render_deployment(camera(epoch=1700000000.25)))["DRISHTI_EPOCH"] == "1700000000.25"


def test_epoch_is_stable_across_generations() -> None:
    later = camera(fps=5)
    later["metadata"]["generation"] = 7
    assert (env_of(render_deployment(later))["DRISHTI_EPOCH"]
            == env_of(render_deployment(camera()))["DRISHTI_EPOCH"])


def test_the_camera_service_accepts_the_rendered_env(monkeypatch, tmp_path) -> None:
    """The pod's environment, read by the service's own settings loader, gives back the spec."""
    monkeypatch.chdir(tmp_path)  # no config.yaml
    for key in list(__import__("os").environ):
        if key.startswith("DRISHTI_") or key == "PORT":
            monkeypatch.delenv(key)
    for key, value in env_of(render_deployment(camera(fps=24, maxWidth=640, sendTimeout=2.5))).items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.fps == 24 and settings.max_width == 640 and settings.send_timeout == 2.5
    assert settings.epoch == CREATED_UNIX and settings.name == "gate-1" and settings.log_format == "json"
    assert str(settings.cache_dir) == render.CACHE_DIR


def test_probes_ports_and_security() -> None:
    deployment = render_deployment(camera())
    c = container(deployment)
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["cache"] == render.CACHE_DIR
    assert {"name": "cache", "emptyDir": {}} in pod["volumes"]
    assert c["resources"] == render.DEFAULT_RESOURCES


def test_service_port_follows_spec() -> None:
    service = render_service(camera(port=9100))
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 9100, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["type"] == "ClusterIP"


def test_resources_override_per_kind() -> None:
    c = container(render_deployment(camera(resources={"requests": {"cpu": "1", "memory": 268435456}})))
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "268435456"}
    assert c["resources"]["limits"] == render.DEFAULT_RESOURCES["limits"]


def test_image_default_override_and_pull_policy() -> None:
    assert container(render_deployment(camera()))["image"] == "drishti/stream:dev"
    assert container(render_deployment(camera(), default_image="reg/cam:1"))["image"] == "reg/cam:1"
    c = container(render_deployment(camera(image="reg/cam:2", imagePullPolicy="Never"),
                                    default_image="reg/cam:1"))
    assert c["image"] == "reg/cam:2" and c["imagePullPolicy"] == "Never"
    assert "imagePullPolicy" not in container(render_deployment(camera()))


def test_gcs_source_mounts_the_credentials_secret() -> None:
    deployment = render_deployment(camera(source="gs://bucket/crowd.mp4",
                                          gcsCredentials={"secretName": "gcs-key", "key": "sa.json"}))
    env = env_of(deployment)
    assert env["DRISHTI_VIDEO_PATH"] == "gs://bucket/crowd.mp4"
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == f"{render.GCS_DIR}/sa.json"
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "gcs-credentials", "secret": {"secretName": "gcs-key", "defaultMode": 0o440}} in \
        pod["volumes"]
    assert {"name": "gcs-credentials", "mountPath": render.GCS_DIR, "readOnly": True} in \
        pod["containers"][0]["volumeMounts"]


def test_tracing_names_the_otlp_endpoint() -> None:
    env = env_of(render_deployment(camera(tracing={"otlpEndpoint": "http://jaeger.tracing.svc:4318"})))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger.tracing.svc:4318"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env_of(render_deployment(camera()))


def test_a_going_pod_serves_a_little_longer_and_says_why_it_failed() -> None:
    deployment = render_deployment(camera())
    c = container(deployment)
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": render.PRE_STOP_SECONDS}}}
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # SIGTERM, then the camera's own graceful shutdown, within the grace
    assert grace > render.PRE_STOP_SECONDS
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_local_path_mounts_the_claim_read_only() -> None:
    deployment = render_deployment(camera(source="site-a/gate.mp4",
                                          volume={"claimName": "videos", "mountPath": "/data",
                                                  "subPath": "v"}))
    assert env_of(deployment)["DRISHTI_VIDEO_PATH"] == "/data/site-a/gate.mp4"
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "video", "persistentVolumeClaim": {"claimName": "videos", "readOnly": True}} in \
        pod["volumes"]
    assert {"name": "video", "mountPath": "/data", "readOnly": True, "subPath": "v"} in \
        pod["containers"][0]["volumeMounts"]
    absolute = render_deployment(camera(source="/data/x.mp4", volume={"claimName": "videos"}))
    assert env_of(absolute)["DRISHTI_VIDEO_PATH"] == "/data/x.mp4"


def test_equal_specs_render_equal_templates() -> None:
    a, b = render_deployment(camera(fps=10)), render_deployment(camera(fps=10))
    assert a == b and pod_hash(a) == render.pod_spec_hash(a["spec"]["template"])


def test_hash_changes_only_with_the_pod() -> None:
    base = pod_hash(render_deployment(camera(fps=10)))
    assert pod_hash(render_deployment(camera(fps=20))) != base
    assert pod_hash(render_deployment(camera(fps=10, jpegQuality=60))) != base
    assert pod_hash(render_deployment(camera(fps=10, image="other:1"))) != base
    # not the pod: replicas, the camera's labels, its status, its generation
    assert pod_hash(render_deployment(camera(fps=10, replicas=3))) == base
    relabelled = camera(fps=10)
    relabelled["metadata"]["labels"] = {"team": "other"}
    relabelled["metadata"]["generation"] = 9
    relabelled["status"] = {"phase": "Ready"}
    assert pod_hash(render_deployment(relabelled)) == base


def test_replicas() -> None:
    assert render_deployment(camera(replicas=3))["spec"]["replicas"] == 3
    body = camera()
    del body["spec"]["replicas"]
    assert render_deployment(body)["spec"]["replicas"] == 1


def test_rendering_does_not_mutate_the_camera() -> None:
    body = camera(fps=10)
    before = copy.deepcopy(body)
    render.render(body)
    assert body == before


@pytest.mark.parametrize("spec", [{"fps": 0}, {"jpegQuality": 101}, {"source": ""}, {"logLevel": "loud"}])
def test_a_spec_the_camera_would_refuse_is_invalid(spec: dict) -> None:
    with pytest.raises(InvalidSpec):
        render_deployment(camera(**spec))


def test_stream_url() -> None:
    assert render.stream_url("gate-1", "site-a", 8000) == "ws://gate-1.site-a.svc:8000/ws/stream"


STANDARD_LABELS = {
    "app.kubernetes.io/name": "drishti-stream", "app.kubernetes.io/instance": "gate-1",
    "app.kubernetes.io/component": "camera", "app.kubernetes.io/part-of": "drishti",
    "app.kubernetes.io/managed-by": "drishti-operator",
}
SELECTOR = {"app.kubernetes.io/name": "drishti-stream", "app.kubernetes.io/instance": "gate-1"}
OWNERS = [{"controller": True, "blockOwnerDeletion": True, "apiVersion": "drishti.io/v1alpha1",
           "kind": "VirtualCamera", "name": "gate-1", "uid": "0c3e-uid"}]


def test_the_whole_deployment_of_a_camera() -> None:
    """Everything the cluster is told about a camera's pods: probes, rollout, security, volumes, env."""
    deployment = render_deployment(camera())
    digest = pod_hash(deployment)
    assert re.fullmatch("[0-9a-f]{16}", digest)
    assert deployment == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gate-1", "namespace": "site-a", "labels": {**STANDARD_LABELS, "team": "crowd"},
                     "ownerReferences": OWNERS},
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 120,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": SELECTOR},
            "template": {
                "metadata": {"labels": STANDARD_LABELS, "annotations": {HASH_ANNOTATION: digest}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 13,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                        "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "camera",
                        "image": "drishti/stream:dev",
                        "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
                        "env": [{"name": name, "value": value} for name, value in (
                            ("DRISHTI_NAME", "gate-1"),
                            ("DRISHTI_EPOCH", str(CREATED_UNIX)),
                            ("DRISHTI_VIDEO_PATH", "synthetic"),
                            ("DRISHTI_LOOP", "true"),
                            ("DRISHTI_JPEG_QUALITY", "85"),
                            ("DRISHTI_HOST", "0.0.0.0"),
                            ("DRISHTI_PORT", "8000"),
                            ("DRISHTI_SEND_TIMEOUT", "5"),
                            ("DRISHTI_MAX_CLIENTS", "1000"),
                            ("DRISHTI_REQUEST_TIMEOUT", "10"),
                            ("DRISHTI_MAX_HEADER_BYTES", "16384"),
                            ("DRISHTI_PING_INTERVAL", "20"),
                            ("DRISHTI_PING_TIMEOUT", "20"),
                            ("DRISHTI_CACHE_BUDGET_MB", "2048"),
                            ("DRISHTI_CACHE_DIR", "/var/cache/drishti"),
                            ("DRISHTI_LOG_LEVEL", "info"),
                            ("DRISHTI_LOG_FORMAT", "json"),
                        )],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                                           "periodSeconds": 2, "failureThreshold": 3},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"},
                                          "initialDelaySeconds": 5, "periodSeconds": 10,
                                          "failureThreshold": 3},
                        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                      "limits": {"memory": "768Mi"}},
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "lifecycle": {"preStop": {"sleep": {"seconds": 3}}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/drishti"},
                                         {"name": "frames", "mountPath": "/var/cache/drishti/frames"},
                                         {"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "cache", "emptyDir": {}},
                                {"name": "frames", "emptyDir": {"sizeLimit": "2112Mi"}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def test_the_whole_service_of_a_camera() -> None:
    body = camera()
    del body["spec"]["port"]  # the camera's default port
    assert render_service(body) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gate-1", "namespace": "site-a", "labels": {**STANDARD_LABELS, "team": "crowd"},
                     "ownerReferences": OWNERS},
        "spec": {"type": "ClusterIP", "selector": SELECTOR,
                 "ports": [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]},
    }


def test_a_claim_mounts_at_videos_unless_told() -> None:
    deployment = render_deployment(camera(source="gate.mp4", volume={"claimName": "videos"}))
    assert env_of(deployment)["DRISHTI_VIDEO_PATH"] == "/videos/gate.mp4"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["volumes"][3:] == [{"name": "video",
                                   "persistentVolumeClaim": {"claimName": "videos", "readOnly": True}}]
    assert pod["containers"][0]["volumeMounts"][3:] == [{"name": "video", "mountPath": "/videos",
                                                         "readOnly": True}]


@pytest.mark.parametrize(("spec", "volume"), [
    ({}, {"name": "frames", "emptyDir": {"sizeLimit": "2112Mi"}}),  # the default budget, 2048 MiB, + 64
    ({"cacheBudgetMb": 100}, {"name": "frames", "emptyDir": {"sizeLimit": "164Mi"}}),
    ({"cacheBudgetMb": 0}, {"name": "frames", "emptyDir": {"sizeLimit": "64Mi"}}),
    ({"store": {"claimName": "frames-of-gate-3"}},
     {"name": "frames", "persistentVolumeClaim": {"claimName": "frames-of-gate-3"}}),
])
def test_the_frame_store_has_a_volume_sized_to_its_budget_or_the_claim_named(spec, volume) -> None:
    pod = render_deployment(camera(**spec))["spec"]["template"]["spec"]
    assert pod["volumes"][1] == volume
    assert pod["containers"][0]["volumeMounts"][1] == {"name": "frames", "mountPath": render.STORE_DIR}
    assert render.STORE_DIR == "/var/cache/drishti/frames"


def test_gcs_credentials_default_to_key_json_and_come_after_the_settings() -> None:
    env = container(render_deployment(camera(source="gs://bucket/crowd.mp4",
                                             gcsCredentials={"secretName": "gcs-key"},
                                             tracing={"otlpEndpoint": "http://otel:4318"})))["env"]
    assert env[-2:] == [{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{render.GCS_DIR}/key.json"},
                        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel:4318"}]
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env_of(render_deployment(camera()))
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env_of(render_deployment(camera(tracing={})))


def test_limits_override_and_requests_stay_default() -> None:
    c = container(render_deployment(camera(resources={"limits": {"memory": "2Gi", "cpu": 2}})))
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "256Mi"},
                              "limits": {"memory": "2Gi", "cpu": "2"}}


def test_the_hash_does_not_depend_on_the_order_of_keys() -> None:
    """The API server may give a spec's maps back in another order: that alone must not roll the pods."""
    one = camera(resources={"requests": {"cpu": "1", "memory": "1Gi"}})
    other = camera(resources={"requests": {"memory": "1Gi", "cpu": "1"}})
    assert pod_hash(render_deployment(one)) == pod_hash(render_deployment(other))


def test_hash_ignores_its_own_annotation() -> None:
    template = render_deployment(camera())["spec"]["template"]
    unhashed = copy.deepcopy(template)
    del unhashed["metadata"]["annotations"][HASH_ANNOTATION]
    assert render.pod_spec_hash(unhashed) == render.pod_spec_hash(template) == pod_hash({"spec": {
        "template": template}})
    assert HASH_ANNOTATION in template["metadata"]["annotations"]  # hashing does not strip the original


@pytest.mark.parametrize("spec,prefix", [
    ({"fps": 0}, "DRISHTI_FPS=0: "),
    ({"jpegQuality": 101}, "DRISHTI_JPEG_QUALITY=101: "),
    ({"source": ""}, "DRISHTI_VIDEO_PATH='': "),
    ({"logLevel": "loud"}, "DRISHTI_LOG_LEVEL='loud': "),
    ({"fps": 0, "jpegQuality": 0}, "DRISHTI_FPS=0: "),
])
def test_an_invalid_spec_names_the_setting_and_its_value(spec: dict, prefix: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        render_deployment(camera(**spec))
    assert str(caught.value).startswith(prefix) and len(str(caught.value)) > len(prefix) + 5


def test_a_camera_without_creation_time_or_epoch_is_invalid() -> None:
    body = camera()
    del body["metadata"]["creationTimestamp"]
    with pytest.raises(InvalidSpec, match="^the camera has no creationTimestamp and no spec.epoch$"):
        render_deployment(body)
    body["spec"]["epoch"] = 5
    assert env_of(render_deployment(body))["DRISHTI_EPOCH"] == "5"


def test_epoch_of() -> None:
    assert render.epoch_of(camera()) == CREATED_UNIX
    assert render.epoch_of(camera(epoch=12.5)) == 12.5
    assert render.epoch_of({"spec": {"epoch": 0}, "metadata": {}}) == 0.0


def test_child_labels_put_the_standard_ones_over_the_cameras() -> None:
    body = camera()
    body["metadata"]["labels"] = {"team": "crowd", "app.kubernetes.io/name": "mine"}
    assert render.child_labels(body) == {**STANDARD_LABELS, "team": "crowd"}
    del body["metadata"]["labels"]
    assert render.child_labels(body) == STANDARD_LABELS


def test_label_selector_selects_the_cameras_pods() -> None:
    assert render.label_selector("gate-1") == ("app.kubernetes.io/name=drishti-stream,"
                                               "app.kubernetes.io/instance=gate-1")


@pytest.mark.parametrize("path", ["/tmp", "/var/cache/drishti/", "/var/cache/drishti/frames/."])
def test_a_video_volume_over_the_cameras_own_mounts_is_invalid(path: str) -> None:
    with pytest.raises(InvalidSpec, match="volume.mountPath"):
        render_deployment(camera(source="gate.mp4", volume={"claimName": "videos", "mountPath": path}))
