"""The service of tokens.proto: API tokens."""
