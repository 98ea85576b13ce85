"""The services of infra.proto: backends, StorageClasses, volumes, volume snapshots,
clusters, activity and events."""
