"""Secrets at rest: tokens are Fernet ciphertext in the database, with key rotation."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text

from conftest import make_settings
from shopify_bm.crypto import (
    EncryptionNotConfiguredError,
    Keyring,
    UndecryptableSecretError,
    keyring,
    load_or_create_key,
)
from shopify_bm.models import Shop
from shopify_bm.runtime import Runtime
from shopify_bm.settings import Settings

BM_TOKEN = "bm-token-3f1c9a7e-plaintext"
ACCESS_TOKEN = "shpat_0123456789abcdef-plaintext"
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def key(settings: Settings) -> str:
    """The key the test database is written with (the conftest's, as its fixtures load it)."""
    assert settings.encryption_key is not None
    return settings.encryption_key.get_secret_value()


@pytest.fixture
def restore_keyring(key: str) -> Iterator[None]:
    """Tests here change the process-wide keyring; give the others theirs back."""
    yield
    keyring.configure(key)


def add_shop(runtime: Runtime, domain: str, token: str = BM_TOKEN) -> int:
    with runtime.db.transaction() as session:
        shop = Shop(domain=domain, backmarket_token=token, access_token=ACCESS_TOKEN)
        session.add(shop)
        session.flush()
        return shop.id


def raw_secrets(runtime: Runtime, shop_id: int) -> tuple[str, str, str | None]:
    """The columns as stored, bypassing the column type."""
    with runtime.db.transaction() as session:
        row = session.execute(
            text("SELECT backmarket_token, access_token, refresh_token FROM shops WHERE id = :id"),
            {"id": shop_id},
        ).one()
    return row[0], row[1], row[2]


def read_token(runtime: Runtime, shop_id: int) -> str | None:
    with runtime.db.transaction() as session:
        return session.execute(select(Shop.backmarket_token).where(Shop.id == shop_id)).scalar_one()


def test_tokens_are_stored_as_ciphertext_and_read_back(runtime: Runtime, key: str) -> None:
    shop_id = add_shop(runtime, "cipher.myshopify.com")

    stored_bm, stored_access, stored_refresh = raw_secrets(runtime, shop_id)

    assert BM_TOKEN not in stored_bm
    assert ACCESS_TOKEN not in stored_access
    assert stored_refresh is None  # no value is stored as NULL, not as an encrypted empty string
    fernet = Fernet(key.encode())
    assert fernet.decrypt(stored_bm.encode()).decode() == BM_TOKEN
    assert fernet.decrypt(stored_access.encode()).decode() == ACCESS_TOKEN
    with runtime.db.transaction() as session:
        shop = session.get_one(Shop, shop_id)
        assert (shop.backmarket_token, shop.access_token) == (BM_TOKEN, ACCESS_TOKEN)


def test_same_token_encrypts_differently_each_time(runtime: Runtime) -> None:
    first, second = add_shop(runtime, "a.myshopify.com"), add_shop(runtime, "b.myshopify.com")

    assert raw_secrets(runtime, first)[0] != raw_secrets(runtime, second)[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("restore_keyring")
def test_key_rotation(runtime: Runtime, key: str) -> None:
    old_row = add_shop(runtime, "old.myshopify.com", "old-token")

    keyring.configure(f"{NEW_KEY}, {key}")  # new key first, old one still accepted

    assert read_token(runtime, old_row) == "old-token"
    new_row = add_shop(runtime, "new.myshopify.com", "new-token")
    stored = raw_secrets(runtime, new_row)[0].encode()
    assert Fernet(NEW_KEY.encode()).decrypt(stored) == b"new-token"
    with pytest.raises(InvalidToken):
        Fernet(key.encode()).decrypt(stored)

    # A token written again (a refreshed one) moves its row to the new key.
    with runtime.db.transaction() as session:
        session.get_one(Shop, old_row).backmarket_token = "refreshed-token"
    rewritten = raw_secrets(runtime, old_row)[0].encode()
    assert Fernet(NEW_KEY.encode()).decrypt(rewritten) == b"refreshed-token"

    keyring.configure(NEW_KEY)  # the old key retired: rewritten rows still read
    assert read_token(runtime, old_row) == "refreshed-token"
    assert read_token(runtime, new_row) == "new-token"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("restore_keyring")
def test_a_removed_key_makes_its_secrets_unreadable(runtime: Runtime) -> None:
    shop_id = add_shop(runtime, "lost.myshopify.com")

    keyring.configure(NEW_KEY)

    with pytest.raises(UndecryptableSecretError) as raised:
        read_token(runtime, shop_id)
    assert BM_TOKEN not in str(raised.value)
    assert raised.value.__cause__ is None  # the message says what to do; no Fernet internals


def test_keyring_without_keys() -> None:
    empty = Keyring()

    with pytest.raises(EncryptionNotConfiguredError):
        empty.encrypt("secret")
    with pytest.raises(EncryptionNotConfiguredError):
        empty.configure(" , ")


def test_keyring_round_trip_and_garbage() -> None:
    ring = Keyring()
    ring.configure(NEW_KEY)

    token = ring.encrypt("secret")
    assert token != "secret"
    assert ring.decrypt(token) == "secret"
    with pytest.raises(UndecryptableSecretError):
        ring.decrypt("not a fernet token")


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    instance = tmp_path / "instance" / "nested"

    key = load_or_create_key(instance)

    path = instance / "encryption.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key
    Fernet(key.encode())  # a usable Fernet key
    assert load_or_create_key(instance) == key


def test_key_file_written_by_another_process_is_used(tmp_path: Path) -> None:
    (tmp_path / "encryption.key").write_text(f"  {NEW_KEY}\n")

    assert load_or_create_key(tmp_path) == NEW_KEY


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("restore_keyring")
def test_runtime_without_a_configured_key_creates_the_key_file(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, SHOPIFY_BM_ENCRYPTION_KEY=None)

    runtime = Runtime.start(settings)
    try:
        runtime.prepare()
        key_file = settings.instance_path / "encryption.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        created = key_file.read_text().strip()
        shop_id = add_shop(runtime, "filekey.myshopify.com")
        stored = raw_secrets(runtime, shop_id)[0]
        assert Fernet(created.encode()).decrypt(stored.encode()).decode() == BM_TOKEN
    finally:
        runtime.db.dispose()
