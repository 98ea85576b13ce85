"""Development only: the Kubernetes emulator and the rig that runs Vessel embedded.

Services and the kernel never import it (import-linter)."""
