"""Errors in OpenAI's wire format: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["APIError", "error_body", "error_response", "send_error"]

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
    504: "timeout_error",
}


class APIError(Exception):
    """An error a route returns to the client, with its HTTP status."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, code=self.code, param=self.param)


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error" if status >= 500 else
                                                                 "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(exc: Exception) -> APIError:
    """Map a genstack error to an HTTP error."""
    from ..errors import ContextLengthExceeded, GenstackError
    from ..stores.collections import CollectionNotFound

    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ContextLengthExceeded):
        return APIError(400, str(exc), code="context_length_exceeded")
    if isinstance(exc, CollectionNotFound):
        return APIError(404, str(exc), code="collection_not_found")
    if isinstance(exc, GenstackError):
        return APIError(400, str(exc))
    return APIError(500, f"internal error ({type(exc).__name__}); see the server log")


async def send_error(send, status: int, message: str, code: str | None = None, *, close: bool = False) -> None:
    """Answer an ASGI request with the OpenAI error body, from middleware that runs before any route
    (``close``: ask the client to drop the connection, for a body that was not read)."""
    body = json.dumps(error_body(status, message, code=code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + ([(b"connection", b"close")] if close else [])})
    await send({"type": "http.response.body", "body": body})
