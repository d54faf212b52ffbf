"""Every Kopf handler of the operator, registered by importing this module
(`kopf run -m drishti_operator.handlers`; `drishti-operator` imports it).

| module          | handlers                                   | concern                                    |
|-----------------|--------------------------------------------|--------------------------------------------|
| `lifecycle`     | startup, login, cleanup                    | settings, credentials, runtime state       |
| `indices`       | cameras, camera_deployments, camera_pods   | what handlers read instead of the API      |
| `reconcile`     | reconcile, camera_event                    | render and apply a camera's children       |
| `drift`         | deployment_event, service_event            | apply a child again when it drifted        |
| `status_writer` | pod_event                                  | debounced status writes                    |
"""

from drishti_operator import drift, indices, lifecycle, reconcile, status_writer

__all__ = ["drift", "indices", "lifecycle", "reconcile", "status_writer"]
