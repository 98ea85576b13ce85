"""Who is calling and what they may do: the access policy of every RPC, roles and scopes,
and API tokens."""
