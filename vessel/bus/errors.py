"""How a handler tells the bus what to do with a message it could not handle.

- `TemporaryError(delay)`: redeliver after `delay` seconds (nak with delay); after the
  consumer's maximum deliveries the message is dead-lettered.
- `PermanentError`: never retry; the message is terminated and dead-lettered.
- Any other exception is treated as temporary with a default delay, so a bug or a
  transient outage never loses a message silently.
"""

from __future__ import annotations


class HandlerError(Exception):
    """Base of the retry-policy errors a handler may raise."""


class TemporaryError(HandlerError):
    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(HandlerError):
    pass


class BusError(Exception):
    """The bus itself failed (not connected, stream misconfigured...)."""


class KeyExistsError(BusError):
    """A KV create found the key, or an update found a newer revision (a write conflict)."""
