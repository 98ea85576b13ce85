"""Key providers: each wraps a bucket's master key under a key of its own kind, behind
`vessel.sealed.keys.KeyProvider` (docs/design/0004-key-providers.md)."""
