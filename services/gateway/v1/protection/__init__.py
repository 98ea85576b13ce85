"""The services of protection.proto: snapshots, the backup catalog, schedules, buckets,
progress, clones and migrations (mobility), and hooks."""
