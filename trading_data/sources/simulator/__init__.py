"""Offline market simulator speaking the Polygon and Unusual Whales REST JSON."""

from trading_data.sources.simulator.app import create_app
from trading_data.sources.simulator.faults import Fault, FaultInjector, RequestStats
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer, inprocess_transport, serve

__all__ = [
    "Fault",
    "FaultInjector",
    "RequestStats",
    "SimulatedMarket",
    "SimulatorServer",
    "create_app",
    "inprocess_transport",
    "serve",
]
