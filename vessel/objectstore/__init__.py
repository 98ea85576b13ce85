"""Object-store port: the `ObjectStore` protocol and its MinIO-SDK implementation."""
