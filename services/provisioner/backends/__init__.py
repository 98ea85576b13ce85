"""Storage backends behind the `StorageBackend` protocol."""
