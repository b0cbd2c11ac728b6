"""The simulator's one exception root.

Each of its errors ends as an answer a real server would give (a SOAP fault, a per-message
ResponseCode, a Graph error body); none of them escapes a request handler.
"""


class SimulatorError(Exception):
    """Root of every error the simulator raises on its own account."""
