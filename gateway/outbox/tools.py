"""The outbox's tools beside its reading routes: a message's checks and link check, its release to a real SMTP
server, and the chaos switch. Mounted like the reading routes: under ``/v1/outbox`` (the API key header) always,
and under the page's ``/outbox`` (its cookie) when the page is on."""

from __future__ import annotations

from flask import Blueprint, Flask

from mail_gateway.http import docs
from mail_gateway.outbox import chaos_routes, release
from mail_gateway.outbox.api import with_content_headers
from mail_gateway.outbox.checks import routes as check_routes

API_NAME = "outbox_tools_api"
PAGE_NAME = "outbox_tools_page"


def tools_blueprint(name: str, messages: str, chaos: str) -> Blueprint:
    """The tools' routes, a message's under ``messages`` and the switch at ``chaos``."""
    blueprint = Blueprint(name, __name__)
    blueprint.add_url_rule(f"{messages}/<message_id>/checks", view_func=check_routes.message_checks_view,
                           methods=["GET"])
    blueprint.add_url_rule(f"{messages}/<message_id>/links/check", view_func=check_routes.check_links_view,
                           methods=["POST"])
    blueprint.add_url_rule(f"{messages}/<message_id>/release", view_func=release.release_message, methods=["POST"])
    blueprint.add_url_rule(chaos, view_func=chaos_routes.get_chaos, methods=["GET"])
    blueprint.add_url_rule(chaos, view_func=chaos_routes.set_chaos, methods=["PUT"])
    blueprint.after_request(with_content_headers)  # as the reading routes beside them answer
    return blueprint


def install_tools(app: Flask, page: bool) -> None:
    """Mount the API's routes, and the page's too when ``page`` (the page is on)."""
    app.register_blueprint(tools_blueprint(API_NAME, "/v1/outbox", "/v1/outbox/chaos"))
    if page:
        app.register_blueprint(docs.for_browsers(tools_blueprint(PAGE_NAME, "/outbox/messages", "/outbox/chaos")))
