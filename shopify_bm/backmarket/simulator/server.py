"""Serve a simulator on a real socket from a background thread."""

from __future__ import annotations

import threading
from types import TracebackType

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from shopify_bm.backmarket.simulator.app import SimulatorApp
from shopify_bm.backmarket.simulator.state import BackMarketSimulator


class _Handler(WSGIRequestHandler):
    """Quiet, and `Server: cloudflare` like every answer from Back Market's hosts."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Tens of thousands of requests a run: no access log."""

    def version_string(self) -> str:
        """The `Server` header."""
        return "cloudflare"


class _Server(ThreadedWSGIServer):
    request_queue_size = 1024  # benchmarks open hundreds of connections at once


class SimulatorServer:
    """A thread serving `simulator`; `port=0` picks a free port. Use as a context manager."""

    def __init__(
        self, simulator: BackMarketSimulator, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.simulator = simulator
        self.app = SimulatorApp(simulator)
        self._server = _Server(host, port, self.app, _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how fast `stop` returns
            name=f"backmarket-simulator:{self._server.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321`, to give a client instead of BM's host."""
        host = self._server.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._server.port}"

    def start(self) -> SimulatorServer:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """End hangs, stop accepting, and close the socket."""
        self.app.release_hangs()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
