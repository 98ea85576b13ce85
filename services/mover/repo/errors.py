"""Repository errors: each names the object or path it is about.

The key and sealing errors come from `vessel.sealed`, whose base class is the
repository's too, so one `except RepositoryError` covers a wrong password as before.
"""

from __future__ import annotations

from vessel.sealed.errors import CorruptObject, UnknownFormat, WrongPassword
from vessel.sealed.errors import SealError as RepositoryError

__all__ = [
    "CorruptObject",
    "RepositoryError",
    "RepositoryExists",
    "RepositoryMissing",
    "UnknownFormat",
    "UnsafeTree",
    "WrongPassword",
]


class UnsafeTree(RepositoryError):
    """A snapshot tree tries to write outside the restore target."""


class RepositoryExists(RepositoryError):
    pass


class RepositoryMissing(RepositoryError):
    pass
