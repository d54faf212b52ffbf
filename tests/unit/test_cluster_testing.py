"""hack.cluster.testing: checks of the local harness are named in the report when another cluster is in
use."""

from __future__ import annotations

import warnings

import pytest

from hack.cluster.testing import Cluster


def test_a_check_of_the_local_harness_is_reported_when_skipped_on_another_cluster() -> None:
    external = Cluster(kubeconfig="/elsewhere/kubeconfig")
    with pytest.warns(UserWarning, match="DRISHTI_TEST_KUBECONFIG's cluster .*: the node is kwok's"):
        assert external.local_only("the node is kwok's") is False


def test_on_the_local_control_plane_the_check_runs_without_a_word() -> None:
    local = Cluster(kubeconfig="/tmp/kubeconfig", control_plane=object())  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert local.local_only("the node is kwok's") is True
