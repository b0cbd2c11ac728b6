"""Graph error answers: `{"error": {"code", "message"}}` with an HTTP status."""

from __future__ import annotations

from typing import Any

from ..errors import SimulatorError


class GraphError(SimulatorError):
    def __init__(
        self, status: int, code: str, message: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": str(self)}}


def not_found(what: str = "item") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", f"The specified {what} was not found.")


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)
