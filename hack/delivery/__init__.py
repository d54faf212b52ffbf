"""Delivery: the Helm chart's derived files, the plain manifests, and the tools (skaffold, docker compose)."""
