"""Shared fixtures: real databases (SQLite and PostgreSQL), the app over real HTTP.

PostgreSQL runs where one is reachable at SHOPIFY_BM_TEST_POSTGRES_URL (default: the local
server, database `test`); each test gets its own schema. Where none is reachable, its tests are
skipped and the run ends with a loud notice saying so.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from werkzeug.serving import BaseWSGIServer, make_server

from shopify_bm import create_app
from shopify_bm.runtime import Runtime
from shopify_bm.settings import Settings

POSTGRES_URL = os.environ.get(
    "SHOPIFY_BM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEST_SECRET = "shpss_test_webhook_secret_0123456789"
TEST_SHOP = "acme-refurb.myshopify.com"
TEST_BM_TOKEN = "YmFja21hcmtldC10ZXN0LXRva2VuOkJNVC0wMTIzNDU2Nzg5YWJjZGVm"
FIXTURES = Path(__file__).parent / "fixtures"
ENCRYPTION_KEY = Fernet.generate_key().decode()
_postgres_unreachable: list[str] = []


def _postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        url = make_url(POSTGRES_URL).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]


_POSTGRES_PROBLEM = _postgres_available()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when PostgreSQL tests did not run."""
    if _postgres_unreachable:
        terminalreporter.section("PostgreSQL NOT TESTED", sep="!", red=True, bold=True)
        terminalreporter.line(
            f"{len(_postgres_unreachable)} PostgreSQL test(s) skipped: no server at "
            f"{POSTGRES_URL} ({_POSTGRES_PROBLEM}). Start it with: pg_ctlcluster "
            "--skip-systemctl-redirect $(ls /etc/postgresql) main start",
            red=True,
            bold=True,
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shopify-bm.sqlite3'}"
        return
    if _POSTGRES_PROBLEM is not None:
        _postgres_unreachable.append(request.node.nodeid)
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}: {_POSTGRES_PROBLEM}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(POSTGRES_URL).set(drivername="postgresql")
    conninfo = admin_url.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (
            make_url(POSTGRES_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Single-store settings for tests, independent of the machine's environment."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "SHOPIFY_BM_INSTANCE_PATH": tmp_path / "instance",
        "SHOPIFY_BM_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "shopify_api_key": "test-client-id",
        "shopify_api_secret": TEST_SECRET,
        "shopify_shop": TEST_SHOP,
        "backmarket_api_token": TEST_BM_TOKEN,
        "backmarket_api_url": "http://127.0.0.1:9",  # replaced by tests that talk to BM
        "backmarket_contact_email": "ops@acme-refurb.example",
        "backmarket_company": "Acme Refurb",
        "SHOPIFY_BM_WORKER_POLL_SECONDS": 0.05,
        "SHOPIFY_BM_BACKMARKET_TIMEOUT_SECONDS": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings on a fresh database."""
    return make_settings(database_url, tmp_path)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A migrated database with the single store seeded."""
    runtime = Runtime.start(settings)
    runtime.prepare()
    yield runtime
    runtime.db.dispose()


@dataclass
class LiveServer:
    """The app served over a real socket."""

    url: str
    server: BaseWSGIServer


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[LiveServer]:
    """The Flask app on a free port, in a thread."""
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{server.port}", server)
    server.shutdown()
    thread.join(timeout=5)
