"""Repository errors: each names the object or path it is about."""

from __future__ import annotations


class RepositoryError(Exception):
    """Base class."""


class WrongPassword(RepositoryError):
    pass


class CorruptObject(RepositoryError):
    """An object failed authentication or does not parse: never used, never crashes."""


class UnknownFormat(RepositoryError):
    pass


class UnsafeTree(RepositoryError):
    """A snapshot tree tries to write outside the restore target."""


class RepositoryExists(RepositoryError):
    pass


class RepositoryMissing(RepositoryError):
    pass
