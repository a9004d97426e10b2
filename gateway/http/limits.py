"""Request size limits: an oversized body is refused from its Content-Length, before any of it is parsed; the
request line and header fields are bounded by ``mail-gateway serve`` (``MAX_HEADER_BYTES``)."""

from __future__ import annotations

from flask import Flask, Response
from werkzeug.exceptions import RequestEntityTooLarge

from mail_gateway.http.problems import Problem

MAX_HEADER_BYTES = 64 * 1024


def too_large(limit: int) -> Problem:
    return Problem(413, "Request too large",
                   f"The request body is larger than {limit} bytes (GATEWAY_MAX_MESSAGE_BYTES); "
                   "send fewer or smaller attachments, or split the batch.", "request-too-large",
                   extra={"max_bytes": limit})


def register_size_limit(app: Flask, limit: int) -> None:
    # Werkzeug enforces it when the body is read, for a declared Content-Length and for chunked bodies alike.
    app.config["MAX_CONTENT_LENGTH"] = limit

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_: RequestEntityTooLarge) -> Response:
        return too_large(limit).response()
