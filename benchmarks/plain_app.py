"""The yardstick for the gateway's HTTP overhead: a plain Flask JSON route under the same WSGI server."""

from __future__ import annotations

import argparse

from flask import Flask, request
from waitress import serve

app = Flask("plain")


@app.post("/v1/messages")
def accept() -> tuple[dict[str, object], int]:
    body = request.get_json()
    return {"status": "accepted", "recipients": len(body.get("to", []))}, 202


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)  # the same default as `mail-gateway serve`
    args = parser.parse_args()
    serve(app, host="127.0.0.1", port=args.port, threads=args.threads, ident="plain")


if __name__ == "__main__":
    main()
