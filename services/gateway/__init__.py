"""Gateway: the public gRPC API in front of the bus.

`main` wires it, `inbox` lists every gRPC service it serves, `context` is what the
servicers share and `state` the KV records it owns; the servicers live in `v1/<proto
file>/`, access control in `auth/`, list reading in `reads/`.
"""
