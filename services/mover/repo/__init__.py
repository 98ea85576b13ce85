"""Vessel's backup repository (`vessel.repo/1`): content-defined chunks, keyed-BLAKE3 ids,
zstd, AES-256-GCM, pack files, indexes and snapshot trees in any `ObjectStore`.
The format is specified in docs/formats.md."""
