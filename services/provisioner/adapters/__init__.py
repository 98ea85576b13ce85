"""The provisioner's adapters to the storage it manages: backends behind the
`StorageBackend` protocol (base.py), btrfs and plain directories, built by factory.py."""
