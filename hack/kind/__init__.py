"""A real Kubernetes node, offline: the kind node image built here and the cluster made from it
(README.md)."""
