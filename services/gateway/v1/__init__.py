"""The `vessel.api.v1` services, one subpackage per proto file (proto/vessel/api/v1/)."""
