"""Secrets at rest: a SQLAlchemy column type that Fernet-encrypts tokens, with key rotation.

`SHOPIFY_BM_ENCRYPTION_KEY` holds comma-separated Fernet keys, newest first: values are written
with the first and read with any, so a new key can be rolled in before old rows are rewritten.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)
_KEY_FILE = "encryption.key"


class EncryptionNotConfiguredError(RuntimeError):
    """No encryption key is loaded, so secrets can be neither stored nor read."""


class UndecryptableSecretError(RuntimeError):
    """A stored secret was encrypted with a key that is no longer configured."""


class Keyring:
    """The configured Fernet keys; one per process, set by the app factory or the CLI."""

    def __init__(self) -> None:
        self._fernet: MultiFernet | None = None

    def configure(self, keys: str) -> None:
        """Load comma-separated Fernet keys, newest first."""
        fernets = [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]
        if not fernets:
            raise EncryptionNotConfiguredError(self.__class__.__doc__)
        self._fernet = MultiFernet(fernets)

    @property
    def fernet(self) -> MultiFernet:
        """The loaded keys, or an error explaining that none are."""
        if self._fernet is None:
            raise EncryptionNotConfiguredError(EncryptionNotConfiguredError.__doc__)
        return self._fernet

    def encrypt(self, plaintext: str) -> str:
        """Encrypt with the newest key."""
        return self.fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt with whichever configured key wrote the value."""
        try:
            return self.fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise UndecryptableSecretError(UndecryptableSecretError.__doc__) from None


keyring = Keyring()


def load_or_create_key(instance_path: Path) -> str:
    """The embedded default: a key file in the instance folder, created on first start.

    Production sets SHOPIFY_BM_ENCRYPTION_KEY instead, so the key never sits beside the data.
    """
    path = instance_path / _KEY_FILE
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning(
        "No SHOPIFY_BM_ENCRYPTION_KEY set: created a key file in the instance folder. "
        "Set the variable in production."
    )
    return key


class EncryptedString(TypeDecorator[str]):
    """A string stored as Fernet ciphertext; plaintext exists only in memory."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        """Encrypt on the way into the database."""
        return None if value is None else keyring.encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        """Decrypt on the way out."""
        return None if value is None else keyring.decrypt(value)
