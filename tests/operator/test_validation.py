"""The API server itself refuses invalid cameras, with a message that names the field and the rule."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.rest import ApiException

from tests.operator.conftest import Cameras

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("spec,field,words", [
    ({"fps": 0}, "spec.fps", "greater than or equal to 1"),
    ({"fps": 121}, "spec.fps", "less than or equal to 120"),
    ({"jpegQuality": 101}, "spec.jpegQuality", "less than or equal to 100"),
    ({"jpegQuality": 0}, "spec.jpegQuality", "greater than or equal to 1"),
    ({"source": ""}, "spec.source", "at least 1 chars long"),
    ({"source": "ftp://host/video.mp4"}, "spec.source", "source must be a file path, gs://bucket/object"),
    ({"source": "s3://bucket/video.mp4"}, "spec.source", "source must be a file path, gs://bucket/object"),
    ({"source": "gs://bucket-only"}, "spec.source", "names a bucket and an object"),
    ({"source": "https://"}, "spec.source", "needs a host"),
    ({"source": "synthetic:big"}, "spec.source", "synthetic:WIDTHxHEIGHT"),
    ({"source": "synthetic:0x0"}, "spec.source", "synthetic:WIDTHxHEIGHT` from 160x120 to 7680x4320"),
    ({"source": "synthetic:7681x4320"}, "spec.source", "from 160x120 to 7680x4320"),
    ({"source": "synthetic:640x4321"}, "spec.source", "from 160x120 to 7680x4320"),
    ({"source": "videos/gate.mp4"}, "spec.source", "relative file path"),
    ({"gcsCredentials": {"secretName": "key"}}, "spec.gcsCredentials", "only to a gs:// source"),
    ({"logLevel": "loud"}, "spec.logLevel", "supported values"),
    ({"replicas": -1}, "spec.replicas", "greater than or equal to 0"),
    ({"epoch": 0}, "spec.epoch", "greater than 0"),
    ({"epoch": 1e308}, "spec.epoch", "less than or equal to 2.53402300799e+11"),
    ({"resources": {"requests": {"cpu": "a lot"}}}, "spec.resources.requests.cpu", "should match"),
    ({"store": {}}, "spec.store.claimName", "Required value"),
    ({"store": {"claimName": "Frames_Of_Gate"}}, "spec.store.claimName", "should match"),
    ({"cacheBudgetMb": -1}, "spec.cacheBudgetMb", "greater than or equal to 0"),
])
def test_invalid_camera_is_rejected(cams: Cameras, vcam_crd, spec: dict, field: str, words: str) -> None:
    with pytest.raises(ApiException) as caught:
        cams.create("bad", **spec)
    assert caught.value.status == 422
    message = json.loads(caught.value.body)["message"]
    assert field in message and words in message, message


def test_missing_source_is_rejected(cams: Cameras, vcam_crd) -> None:
    body = cams.body("nosource")
    del body["spec"]["source"]
    with pytest.raises(ApiException) as caught:
        cams.custom.create_namespaced_custom_object("drishti.io", "v1alpha1", cams.namespace,
                                                    "virtualcameras", body)
    assert caught.value.status == 422 and "spec.source: Required value" in caught.value.body


def test_name_must_fit_a_service(cams: Cameras, vcam_crd) -> None:
    for name in ("1cam", "c" * 64):
        with pytest.raises(ApiException) as caught:
            cams.create(name)
        message = json.loads(caught.value.body)["message"]
        assert caught.value.status == 422
        assert "metadata.name: Invalid value: name must be a DNS-1035 label" in message, message


@pytest.mark.parametrize("spec", [
    {"source": "synthetic"},
    {"source": "synthetic:640x360", "fps": 1, "jpegQuality": 100},
    {"source": "synthetic:160x120"}, {"source": "synthetic:7680x4320", "epoch": 253402300799},
    {"source": "/videos/crowd.mp4", "fps": 120},
    {"source": "crowd.mp4", "volume": {"claimName": "videos"}},
    {"source": "gs://drishti-videos/site-a/gate.mp4", "gcsCredentials": {"secretName": "gcs-key"}},
    {"source": "https://example.org/crowd.mp4", "epoch": 1700000000.5},
    {"source": "synthetic", "store": {"claimName": "frames-of-lobby"}, "cacheBudgetMb": 4096},
])
def test_valid_cameras_are_accepted_with_defaults(cams: Cameras, vcam_crd, spec: dict) -> None:
    body = cams.custom.create_namespaced_custom_object("drishti.io", "v1alpha1", cams.namespace,
                                                       "virtualcameras", {**cams.body("ok"), "spec": spec})
    assert body["spec"]["loop"] is True and body["spec"]["replicas"] == 1 and body["spec"]["port"] == 8000
    assert body["spec"]["jpegQuality"] == spec.get("jpegQuality", 85)
    assert "fps" not in body["spec"] or body["spec"]["fps"] == spec["fps"]
