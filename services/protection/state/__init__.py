"""The KV state protection owns, one module per bucket: its records and the store that
reads and writes them (`vessel/contracts/state.py` names every bucket and its keys).

- `operations`: KV `operations` (and `activity` records of operations), phases checked;
- `snapshots`: KV `app_snapshots`;
- `tickets`: KV `schedule_runs`, a ticket per due time and a cursor per schedule;
- `hooks`: KV `hooks`;
- `locks`: KV `protection_locks`, the in-place restore locks;
- `waits`: KV `restore_waits`;
- `heads`: KV `catalog_heads`.

Stores only store: what a record means for a flow is decided in the domain modules.
"""
