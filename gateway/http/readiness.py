"""``GET /readyz``: can this node take mail right now? 200, or 503 problem+json saying why.

Liveness (``/healthz``) only says the process answers; readiness proves what a send needs: the store (queued
delivery, or once an idempotency key used it), the backend in direct mode (for SMTP a fresh connection with
EHLO, STARTTLS and login as configured, then NOOP; for the file backend a write and room for the largest
message), and the webhook sender of this process when it is failing.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint

from mail_gateway.errors import DeliveryError, GatewayError, StoreUnavailableError
from mail_gateway.http import docs
from mail_gateway.http.problems import Problem, client_detail
from mail_gateway.http.responses import Ready
from mail_gateway.queue import webhooks
from mail_gateway.runtime import Runtime

blueprint = Blueprint("readiness", __name__)
log = logging.getLogger("mail_gateway.http")


@blueprint.get("/readyz")
@docs.operation("Readiness probe: can the backend deliver now?", operation_id="get_readiness", tag="health",
                responses={200: Ready}, problems=(503,))
def readyz() -> dict[str, Any]:
    """Readiness: 200 when this node can take mail (store; backend in direct mode), else 503 saying why."""
    state = Runtime.of()
    backend = state.backend
    if state.settings.queued or state.store.opened:  # a store no request has needed yet is not checked
        try:
            state.store.check()
        except StoreUnavailableError as exc:
            # The route needs no API key: where the store is (a server's host, port, user) goes to the log only.
            log.warning("not ready: store %s: %s", state.store.describe(), exc)
            raise Problem(503, "Not ready", "The store cannot take a write: it did not answer within its bound, "
                          "could not be reached, or refused to write (read-only, or no room left); the gateway's log "
                          "says why.", "not-ready",
                          headers={"Cache-Control": "no-store"}, extra={"backend": backend.name}) from exc
    trouble = webhooks.failing(state.store)
    if trouble is not None:  # its error may name a host: the log has it, the answer does not
        log.warning("not ready: webhook sender: %s", trouble)
        raise Problem(503, "Not ready", "The webhook sender failed and is starting again (the gateway's log says "
                      "why).", "not-ready", headers={"Cache-Control": "no-store"}, extra={"backend": backend.name})
    try:
        # Queued, a node accepts mail while the upstream is down (the workers retry it): an upstream outage must
        # not take every node out of its load balancer. Its deliveries show in /metrics instead.
        if not state.settings.queued:
            backend.check()
    except GatewayError as exc:
        # The route needs no API key: the upstream's host, port and login go to the log only.
        log.warning("not ready: %s", exc)
        reason = client_detail(exc) if isinstance(exc, DeliveryError) else str(exc)
        raise Problem(503, "Not ready", f"The {backend.name} backend cannot deliver: {reason}", "not-ready",
                      headers={"Cache-Control": "no-store"}, extra={"backend": backend.name}) from exc
    return {"status": "ready", "backend": backend.name}
