"""Reading stored objects for the list and get calls: pages and tokens, KV records, and the
backup catalog of a bucket (directly or through protection)."""
