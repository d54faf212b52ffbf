"""A real, local Kubernetes control plane for the tests: build it once, start and stop it on loopback."""
