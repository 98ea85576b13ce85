"""Gateway: the public gRPC API in front of the bus."""
