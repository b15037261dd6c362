"""Running the processes: web and worker together (`serve`), gunicorn (`web`), or a worker."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from werkzeug.serving import make_server

from shopify_bm import create_app
from shopify_bm.runtime import Runtime
from shopify_bm.worker import WorkerPool

log = logging.getLogger(__name__)


def configure_logging(level: str = "INFO") -> None:
    """Plain, greppable logs on stderr."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _on_stop_signals(stop: Any) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "received %s: finishing the current job, then stopping", signal.Signals(signum).name
        )
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_worker(runtime: Runtime) -> None:
    """One worker process; SIGTERM finishes the current job and exits."""
    runtime.prepare()
    pool = WorkerPool(runtime, runtime.settings.worker_concurrency)
    _on_stop_signals(pool.stop)
    pool.run()


def serve(runtime: Runtime) -> None:
    """Web and worker in one process: the embedded default behind `make run`."""
    runtime.prepare()
    app = create_app(runtime=runtime)
    settings = runtime.settings
    server = make_server(settings.host, settings.port, app, threaded=True)
    pool = WorkerPool(runtime, settings.worker_concurrency)
    worker_thread = threading.Thread(target=pool.run, name="export-workers", daemon=True)

    def stop() -> None:
        pool.stop()
        threading.Thread(target=server.shutdown, daemon=True).start()

    _on_stop_signals(stop)
    worker_thread.start()
    log.info("shopify-bm serving on http://%s:%s (worker in-process)", settings.host, server.port)
    server.serve_forever()
    worker_thread.join()


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, runtime: Runtime, options: dict[str, Any]) -> None:
        self.runtime = runtime
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(runtime=self.runtime)


def run_web(runtime: Runtime, workers: int, threads: int) -> None:
    """The web tier under gunicorn; migrate first, once, in the master process."""
    runtime.prepare()
    runtime.db.dispose()  # no connection may cross the fork into the workers
    settings = runtime.settings
    _Gunicorn(
        runtime,
        {
            "bind": f"{settings.host}:{settings.port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "accesslog": None,
            "graceful_timeout": 30,
            "timeout": 30,
        },
    ).run()
