"""What a stored template costs: the gateway over HTTP sending a stored template (about 2 KB of HTML with a
``<style>`` block, five variables), rendered in the sandbox, its CSS inlined and, without a text part of its own,
a text part made from the HTML — against the same gateway sending the plain ~1 KB text message, in the same run
against the same sink (the plain send is the floor, so each template row's ratio is what rendering leaves of the
rate). The sink is the cheap asyncio one, so that its own cost hides little of the gateway's."""

from __future__ import annotations

import json
import sys

from benchmarks import payload
from benchmarks.drive import HttpScenario, Plan, measure, post, start_gateway
from benchmarks.procs import Sink
from benchmarks.results import Row

GROUP = "Templates, asyncio sink"
GOAL = 0.8  # a template send against the plain send
VARIABLES = {"name": "Ann Example", "company": "Acme Widgets", "order": "A-10234", "amount": "149.90",
             "url": "https://example.com/orders/A-10234?token=4f9a1c"}
STYLE = ("<style>body{font-family:Helvetica,Arial,sans-serif;color:#222;margin:0;padding:0}"
         ".wrap{max-width:600px;margin:0 auto;padding:24px}h1{font-size:22px;color:#0b5}"
         "p{font-size:15px;line-height:1.5;margin:0 0 12px}table.items{border-collapse:collapse;width:100%}"
         "table.items td{border-bottom:1px solid #eee;padding:6px 4px}.total{font-weight:bold;text-align:right}"
         ".button{display:inline-block;background:#0b5;color:#fff;padding:10px 18px;border-radius:4px;"
         "text-decoration:none}.footer{font-size:12px;color:#888;margin-top:24px}"
         "@media (max-width:480px){.wrap{padding:12px}}</style>")
ROWS = "".join(f"<tr><td>Item {n}: widget, size {n}</td><td class=\"total\">{n}9.00</td></tr>" for n in range(1, 14))
HTML = (f"<html><head>{STYLE}</head><body><div class=\"wrap\"><h1>Thank you, {{{{ name }}}}!</h1>"
        "<p>Your order <b>{{ order }}</b> with {{ company }} is confirmed. We will write again when it ships; "
        "until then you can follow it on your order page.</p>"
        f"<table class=\"items\">{ROWS}<tr><td>Total</td><td class=\"total\">{{{{ amount }}}}</td></tr></table>"
        "<p><a class=\"button\" href=\"{{ url }}\">See your order</a></p>"
        "<p class=\"footer\">{{ company }} sends this message because you ordered from it. Questions? Reply to "
        "this message; a person reads every answer.</p></div></body></html>")
TEXT = ("Thank you, {{ name }}!\n\nYour order {{ order }} with {{ company }} is confirmed: {{ amount }}.\n"
        "See your order: {{ url }}\n")
TEMPLATES = [("receipt", "text part made from the HTML", None), ("receipt-text", "its own text part", TEXT)]


def template_body(name: str) -> bytes:
    return json.dumps({"from": payload.SENDER, "to": [payload.RECIPIENT], "template": name,
                       "variables": VARIABLES}).encode()


def template_request(name: str, text: str | None) -> bytes:
    """The body of ``POST /v1/templates`` storing the bench's template as ``name``."""
    return json.dumps({"name": name, "subject": "Your order {{ order }} with {{ company }}", "html": HTML,
                       "text": text}).encode()


def _stored(row: Row, port: int, name: str, text: str | None) -> bool:
    """Whether the template could be stored; a version without templates marks the row n/a."""
    status, answer = post(port, "/v1/templates", template_request(name, text))
    if status in (404, 405):
        row.not_applicable = "n/a: this version has no stored templates"
    elif status >= 400:
        row.error = f"storing the template failed with {status}: {answer[:300].decode('utf-8', 'replace')}"
    return status < 400


def template_group(plan: Plan) -> list[Row]:
    print(GROUP, file=sys.stderr, flush=True)
    floor = Row(GROUP, f"gateway HTTP, plain message (~1 KB text), {plan.concurrency} clients", is_floor=True)
    rows = [floor] + [Row(GROUP, f"gateway HTTP, stored template (~2 KB HTML with <style>, 5 variables; {label}), "
                                 f"{plan.concurrency} clients") for _, label, _ in TEMPLATES]
    sink = Sink("asyncio", 0.0)
    server = None
    try:
        server = start_gateway(plan, "smtp", sink)
        scenarios = [HttpScenario(floor, server, sink, "/v1/messages", payload.single_json(), 1, plan.messages,
                                  plan.concurrency)]
        for row, (name, _, text) in zip(rows[1:], TEMPLATES, strict=True):
            if _stored(row, server.port, name, text):
                scenarios.append(HttpScenario(row, server, sink, "/v1/messages", template_body(name), 1,
                                              plan.messages, plan.concurrency))
        measure(scenarios, plan.reps)
    except RuntimeError as exc:
        for row in rows:
            row.error = row.error or str(exc)
    finally:
        if server is not None:
            server.stop()
        sink.stop()
    return rows
