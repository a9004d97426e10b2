"""``X-Content-Type-Options: nosniff`` on every answer of the HTTP API.

A JSON body can quote what a client sent (a template's HTML, a subject, a refused field's value), and a browser
that sniffed it as a page would run it. The header is added in the WSGI call around Flask, so answers no view made
(a 404, a 405, an error handler's problem) have it too, at less cost per request than an ``after_request`` hook;
the server's own refusals add it where they are built (``http.channels.problem_bytes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

HEADER = ("X-Content-Type-Options", "nosniff")
_NAME = HEADER[0].lower()


def with_nosniff(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with nosniff added, unless an answer set it itself (the outbox's do)."""
    if not any(name.lower() == _NAME for name, _ in headers):
        headers.append(HEADER)
    return headers


def register_nosniff(app: Flask) -> None:
    inner: Callable[..., Iterable[bytes]] = app.wsgi_app

    def nosniff(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, with_nosniff(headers), exc_info)

        return inner(environ, start)

    app.wsgi_app = nosniff  # type: ignore[method-assign]
