"""Errors of sealed objects: each names the object it is about and what failed."""

from __future__ import annotations


class SealError(Exception):
    """Base class: a key or a sealed object cannot be used."""


class WrongPassword(SealError):
    """A key file of the provider's kind that its key does not open, or no key file that
    the provider opens (the name is historical: it covers every provider)."""


class CorruptObject(SealError):
    """An object failed authentication or does not parse: never used, never crashes."""


class UnknownFormat(SealError):
    """An object of a format or version this reader does not know."""


class KeyUnavailable(SealError):
    """The key source cannot be reached or refuses (a KMS key disabled, pending deletion
    or denied; a Secret missing): the message names the key, never its material."""


class KeyServiceUnreachable(KeyUnavailable):
    """The key service did not answer (connection refused, timeout): unlike a refusal,
    worth retrying, as an unreachable object store is."""
