"""Kubernetes port: `KubeCluster` (the only user of the official client) and informers."""
