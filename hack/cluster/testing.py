"""What the pytest fixtures in tests/conftest.py are made of: which cluster to use, namespaces per test."""

from __future__ import annotations

import functools
import os
import re
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hack.cluster import build
from hack.cluster.controlplane import ControlPlane, ephemeral, log

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

TEST_LABEL = "drishti.io/test"


# The one way to point the tests at a cluster of yours: never $KUBECONFIG, which may name a shared or
# production cluster that a test session would fill with CRDs, ClusterRoles and namespaces.
TEST_KUBECONFIG_ENV = "DRISHTI_TEST_KUBECONFIG"


@functools.cache
def reachable_kubeconfig() -> str | None:
    """The kubeconfig named by ``DRISHTI_TEST_KUBECONFIG``, checked to answer within a few seconds; None when
    the variable is unset (then the tests start a local control plane). ``$KUBECONFIG`` is never used. Asked
    once per process.
    """
    value = os.environ.get(TEST_KUBECONFIG_ENV)
    if not value:
        return None
    import urllib3
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException

    try:
        api = config.new_client_from_config(config_file=value)
        try:
            client.VersionApi(api).get_code(_request_timeout=5)
        finally:
            api.close()
    except (ConfigException, ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise RuntimeError(f"{TEST_KUBECONFIG_ENV}={value}: the cluster does not answer "
                           f"({type(exc).__name__}: {str(exc)[:120]}); "
                           "unset it to use a local control plane") from None
    return value


def needs_build() -> bool:
    return not build.is_built() and reachable_kubeconfig() is None


@dataclass
class Cluster:
    """The cluster a test session uses: a local control plane this session started, or the one named by
    ``DRISHTI_TEST_KUBECONFIG``."""

    kubeconfig: str
    control_plane: ControlPlane | None = None
    started_in: float = 0.0
    _clients: list[ApiClient] = field(default_factory=list)

    @property
    def local(self) -> bool:
        return self.control_plane is not None

    def local_only(self, what: str) -> bool:
        """Whether to check `what`, a property of the local harness (its kwok node, CIDRs, pinned release):
        True on the local control plane; against DRISHTI_TEST_KUBECONFIG's cluster False, with a warning in
        the test report naming what went unchecked."""
        if not self.local:
            warnings.warn(f"not checked on {TEST_KUBECONFIG_ENV}'s cluster "
                          f"(a property of the local harness): {what}", stacklevel=2)
        return self.local

    @classmethod
    def acquire(cls) -> Cluster:
        external = reachable_kubeconfig()
        if external:
            log(f"using the cluster of {TEST_KUBECONFIG_ENV}={external}")
            return cls(kubeconfig=external)
        if not build.is_built():
            build.ensure_built()
        cp = ephemeral()
        log(f"starting a local control plane in {cp.dir}")
        t0 = time.monotonic()
        cp.start()
        return cls(kubeconfig=str(cp.kubeconfig), control_plane=cp, started_in=time.monotonic() - t0)

    def api_client(self) -> ApiClient:
        from kubernetes import config

        api = config.new_client_from_config(config_file=self.kubeconfig)
        self._clients.append(api)
        return api

    def release(self) -> None:
        for api in self._clients:
            api.close()
        if self.control_plane is not None:
            self.control_plane.stop()


def namespace_name(test_name: str) -> str:
    """A DNS-1123 label from the test's name, with a random suffix: unique and easy to trace back."""
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-") or "test"
    return f"t-{stem}-{secrets.token_hex(3)}"


def create_namespace(api: ApiClient, test_name: str, timeout: float = 30.0) -> str:
    """Create a namespace for one test; return once its ``default`` service account exists."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    name = namespace_name(test_name)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={TEST_LABEL: "true"})))
    deadline = time.monotonic() + timeout
    while True:  # pods are refused until the service-account controller has created it
        if any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items):
            return name
        if time.monotonic() > deadline:
            raise TimeoutError(f"namespace {name}: no default service account after {timeout}s")
        time.sleep(0.1)


def delete_namespace(api: ApiClient, name: str) -> None:
    """Delete the namespace without waiting: the namespace controller removes its contents."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


def tool(name: str) -> Path:
    """Path of a cached client binary (``kubectl`` or ``helm``), fetching it if needed (seconds)."""
    return build.ensure_built(only=(name,)) / name


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2,
               what: str | Callable[[], str] = "condition"):
    """Poll ``predicate`` until it returns something truthy; return that, or raise TimeoutError with ``what``
    (a callable is asked only then, so the message can show the state at the timeout: a log, what is left)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    described = what() if callable(what) else what
    raise TimeoutError(f"timed out after {timeout}s waiting for {described} (last value: {last!r})")


def token_kubeconfig(admin_kubeconfig: str | Path, token: str, user: str, path: Path) -> Path:
    """A kubeconfig for the admin kubeconfig's cluster that authenticates with `token` and nothing else."""
    import yaml

    cluster = yaml.safe_load(Path(admin_kubeconfig).read_text())["clusters"][0]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
