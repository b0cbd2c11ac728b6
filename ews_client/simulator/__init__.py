"""A protocol-faithful Exchange (EWS) simulator for tests, demos and benchmarks."""

from .config import FaultConfig, LatencyConfig, SimulatorConfig, ThrottlePolicy

__all__ = ["FaultConfig", "LatencyConfig", "SimulatorConfig", "ThrottlePolicy"]
