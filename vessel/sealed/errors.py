"""Errors of sealed objects: each names the object it is about and what failed."""

from __future__ import annotations


class SealError(Exception):
    """Base class: a key or a sealed object cannot be used."""


class WrongPassword(SealError):
    """No key file opens with the key provider given."""


class CorruptObject(SealError):
    """An object failed authentication or does not parse: never used, never crashes."""


class UnknownFormat(SealError):
    """An object of a format or version this reader does not know."""
