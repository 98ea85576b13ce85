"""The embedded default: real NATS, a real S3 server, btrfs on a loop device and emulated
Kubernetes API servers, started as local processes for the demo and the tests."""
