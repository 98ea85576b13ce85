"""The `vessel` command-line interface."""
