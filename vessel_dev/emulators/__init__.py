"""In-process emulators of external systems, for tests and local development."""
