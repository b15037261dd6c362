"""A local fake of the Back Market seller API, served over real sockets.

Tests run it in a thread (`SimulatorServer`), benchmarks as a process (`python -m
shopify_bm.backmarket.simulator`). It keeps Back Market's rules (auth, User-Agent, the orderline
state machine, write-once IMEIs, Cloudflare's rate limit), injects faults on demand, and counts
what invariants need: ships per order, PATCHes per orderline, 429s per seller.
"""

from shopify_bm.backmarket.simulator.app import SimulatorApp
from shopify_bm.backmarket.simulator.demo import DEMO_TOKEN, seed_demo
from shopify_bm.backmarket.simulator.faults import Faults, RateLimit
from shopify_bm.backmarket.simulator.observations import RequestRecord, Stats
from shopify_bm.backmarket.simulator.orders import LineSeed, OrderSeed
from shopify_bm.backmarket.simulator.rules import is_valid_imei
from shopify_bm.backmarket.simulator.server import SimulatorServer
from shopify_bm.backmarket.simulator.state import BackMarketSimulator, SeedError

__all__ = [
    "DEMO_TOKEN",
    "BackMarketSimulator",
    "Faults",
    "LineSeed",
    "OrderSeed",
    "RateLimit",
    "RequestRecord",
    "SeedError",
    "SimulatorApp",
    "SimulatorServer",
    "Stats",
    "is_valid_imei",
    "seed_demo",
]
