"""Database engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Dialect, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeEngine

MIGRATIONS = Path(__file__).parent / "migrations"
STARTUP_LOCK = 424242  # PostgreSQL advisory lock taken while migrating and seeding at start


class Database:
    """One engine and session factory per process; workers and the web share the schema."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = make_url(url)
        self.engine = build_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer. Threads and processes queue here instead of in SQLite's busy
        # handler, which sleeps in steps of up to 100 ms and wrecks latency under contention.
        self._writer: AbstractContextManager[object] = nullcontext()
        if self.url.get_backend_name() == "sqlite":
            database = self.url.database
            on_disk = bool(database) and database != ":memory:"
            self._writer = SQLiteWriterLock(Path(f"{database}.lock") if on_disk else None)

    @property
    def is_postgresql(self) -> bool:
        """PostgreSQL has SKIP LOCKED and LISTEN/NOTIFY; SQLite serialises writers instead."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any exception."""
        with self._writer, self.sessions.begin() as session:
            yield session

    def serialize_startup(self, session: Session) -> None:
        """Hold the start-up lock until the transaction ends (PostgreSQL; SQLite has one writer)."""
        if self.is_postgresql:
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STARTUP_LOCK})

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent, safe on every start)."""
        with self.engine.begin() as connection:
            if self.is_postgresql:
                # Several processes start at once in production: one migrates, the others wait.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({STARTUP_LOCK})")
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close pooled connections (after fork, or at exit)."""
        self.engine.dispose()


def dialect_insert(session: Session, table: Any) -> Any:
    """`INSERT` with the dialect's `ON CONFLICT` support (PostgreSQL and SQLite share it)."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


class SQLiteWriterLock:
    """One writer at a time across threads (a lock) and processes (`flock` on a file).

    Re-entrant within a thread, like the transactions it guards; the file lock is taken by the
    outermost holder only. Waiters sleep in the kernel and wake as soon as it is free.
    """

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.RLock()
        self._path = path
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0

    def __enter__(self) -> SQLiteWriterLock:
        self._threads.acquire()
        if self._depth == 0 and self._path is not None:
            if self._fd is None or self._pid != os.getpid():
                # Each process opens its own: flock belongs to the open file, which a forked
                # child (gunicorn's workers) would otherwise share with its parent.
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1
        return self

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


def alembic_config() -> Config:
    """Alembic's configuration, pointing at the migrations shipped inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def build_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine tuned for its backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # No pre-ping: it is a round trip on every checkout of the webhook path. Connections are
    # recycled instead; one that died with the server fails one request, which Shopify retries.
    # The pool is bounded (pool_size + 4) so processes x threads stays under max_connections.
    return create_engine(
        url, pool_size=pool_size, max_overflow=4, pool_recycle=900, hide_parameters=True
    )


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: an error message must never carry a statement's values (tokens, data).
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _begin below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes in WAL mode
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads, then writes, fails
        # with SQLITE_BUSY at once instead of waiting when another writer got there first.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class DriverStatement:
    """A hot-path statement run straight on the driver's cursor, in the session's transaction.

    Written once with `:name` parameters in the SQL both databases share; rendered for each
    driver's parameter style on first use. Values go through the same SQLAlchemy type processors
    as everywhere else, so what it stores compares equal to what the ORM stores. It skips the
    per-execution machinery of SQLAlchemy, which costs more than SQLite's own work.
    """

    _PARAM = re.compile(r"(?<!:):([a-z_]+)")

    def __init__(self, sql: str, types: Mapping[str, TypeEngine[Any]] | None = None) -> None:
        self.sql = " ".join(sql.split())
        self.types = dict(types or {})
        self._rendered: dict[str, tuple[str, dict[str, Callable[[Any], Any]]]] = {}

    def _render(self, dialect: Dialect) -> tuple[str, dict[str, Callable[[Any], Any]]]:
        cached = self._rendered.get(dialect.name)
        if cached is None:
            sql = self.sql
            if dialect.paramstyle == "pyformat":
                sql = self._PARAM.sub(r"%(\1)s", sql)
            processors: dict[str, Callable[[Any], Any]] = {}
            for name, type_ in self.types.items():
                processor = type_.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
            cached = (sql, processors)
            self._rendered[dialect.name] = cached
        return cached

    def execute(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run with `params`; returns the rows of a RETURNING or SELECT (else none)."""
        connection = session.connection()
        sql, processors = self._render(connection.dialect)
        values = {
            key: processors[key](value) if key in processors and value is not None else value
            for key, value in params.items()
        }
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, values)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()
