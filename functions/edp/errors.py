"""The project's error hierarchy: every error we raise on purpose derives from EdpError.

Callers catch the narrowest class that lets them decide what to do: a
:class:`TransientError` means "retry / nack so Pub/Sub redelivers", a
:class:`PermanentError` means "dead-letter it, retrying will not help".
"""

from __future__ import annotations


class EdpError(Exception):
    """Root of every error the platform raises deliberately."""


class ConfigError(EdpError):
    """Settings are missing or inconsistent."""


class ContractError(EdpError):
    """Data does not match the contract in ``schemas/`` (or a name is not in the catalogue)."""


class UnknownTableError(ContractError):
    """A table name is not in the schema catalogue."""


class UnknownColumnError(ContractError):
    """A column name is not in the table's schema."""


class WarehouseError(EdpError):
    """A warehouse call failed."""


class TransientError(EdpError):
    """A failure worth retrying (network, quota, 429/5xx, emulator not ready)."""


class PermanentError(EdpError):
    """A failure that retrying cannot fix (poison message, invalid data)."""
