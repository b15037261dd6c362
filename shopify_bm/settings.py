"""The app's configuration: the only module that reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Region = Literal["eu", "us", "ap"]
BACKMARKET_URLS: dict[Region, str] = {
    "eu": "https://www.backmarket.fr",
    "us": "https://www.backmarket.com",
    "ap": "https://www.backmarket.co.jp",
}
# Largest webhook body accepted. Shopify orders of a few hundred lines stay well under 1 MiB.
DEFAULT_WEBHOOK_MAX_BYTES = 4 * 1024 * 1024


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything configurable, from the environment (names are the architecture's contract)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    # Where state lives.
    database_url: str | None = None  # default: SQLite file in the instance folder
    instance_path: Path = Field(default=Path("instance"), alias="SHOPIFY_BM_INSTANCE_PATH")
    encryption_key: SecretStr | None = Field(default=None, alias="SHOPIFY_BM_ENCRYPTION_KEY")

    # The Shopify app.
    shopify_api_key: str | None = None
    shopify_api_secret: SecretStr | None = None
    shopify_api_secret_old: SecretStr | None = None
    shopify_api_version: str = "2025-10"
    webhook_max_bytes: int = Field(
        default=DEFAULT_WEBHOOK_MAX_BYTES, alias="SHOPIFY_BM_WEBHOOK_MAX_BYTES", gt=0
    )

    # Single-store mode: on when SHOPIFY_SHOP is set.
    shopify_shop: str | None = None
    shopify_access_token: SecretStr | None = None
    backmarket_api_token: SecretStr | None = None
    backmarket_region: Region = "eu"
    backmarket_api_url: str | None = None
    backmarket_locale: str = "fr-fr"
    backmarket_contact_email: str | None = None
    backmarket_company: str | None = None
    admin_password: SecretStr | None = Field(default=None, alias="SHOPIFY_BM_ADMIN_PASSWORD")

    # Export decisions (single-store defaults; per shop in the database).
    ship_without_imei: bool = Field(default=False, alias="SHOPIFY_BM_SHIP_WITHOUT_IMEI")
    exempt_skus: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SHOPIFY_BM_EXEMPT_SKUS"
    )
    accept_orders: bool = Field(default=True, alias="SHOPIFY_BM_ACCEPT_ORDERS")
    backmarket_note_attribute: str = Field(
        default="backmarket_order_id", alias="SHOPIFY_BM_NOTE_ATTRIBUTE"
    )
    backmarket_tag_prefix: str = Field(default="BM:", alias="SHOPIFY_BM_TAG_PREFIX")

    # Serving and the worker.
    host: str = "127.0.0.1"
    port: int = 8080
    worker_poll_seconds: float = Field(default=1.0, alias="SHOPIFY_BM_WORKER_POLL_SECONDS", gt=0)
    # Threads per worker process: exports mostly wait on Back Market, so threads overlap them.
    worker_concurrency: int = Field(default=8, alias="SHOPIFY_BM_WORKER_CONCURRENCY", ge=1)
    job_lock_timeout_seconds: float = Field(
        default=600.0, alias="SHOPIFY_BM_JOB_LOCK_TIMEOUT_SECONDS", gt=0
    )
    backmarket_timeout_seconds: float = Field(
        default=30.0, alias="SHOPIFY_BM_BACKMARKET_TIMEOUT_SECONDS", gt=0
    )

    @field_validator("exempt_skus", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("shopify_shop")
    @classmethod
    def _shop_domain(cls, value: str | None) -> str | None:
        return normalize_shop_domain(value) if value else None

    @property
    def single_store(self) -> bool:
        """Single-store mode runs for one shop configured from the environment."""
        return self.shopify_shop is not None

    @property
    def webhook_secrets(self) -> list[str]:
        """Secrets that may sign a webhook: the current one, then the previous while rotating."""
        return [
            s.get_secret_value()
            for s in (self.shopify_api_secret, self.shopify_api_secret_old)
            if s is not None and s.get_secret_value()
        ]

    @property
    def backmarket_base_url(self) -> str:
        """The Back Market host: explicit override, else the region's platform."""
        return (self.backmarket_api_url or BACKMARKET_URLS[self.backmarket_region]).rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        """DATABASE_URL, or a SQLite file in the instance folder so `make run` needs nothing."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.instance_path / 'shopify-bm.sqlite3').resolve()}"


def normalize_shop_domain(value: str) -> str:
    """`acme`, `acme.myshopify.com` and `https://acme.myshopify.com/` all name one shop."""
    domain = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    return domain if "." in domain else f"{domain}.myshopify.com"
