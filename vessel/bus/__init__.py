"""The bus: CloudEvents over NATS JetStream (streams, durable consumers, KV)."""
