"""The ``webhooks`` of /openapi.json hold to what the gateway really posts: each payload here is made by the code
that makes it in service (a delivery, a bounce report over SMTP, a one-click unsubscribe, inbound mail), received by
a real HTTP receiver that verifies its signature, and read by its documentation model, strictly and with no field
missing or left over, and by the schema the document gives its webhook."""

from __future__ import annotations

import json
import smtplib
import time
from typing import Any, get_args

import jsonschema
import pytest
from ingress_support import wait_until
from openapi_spec_validator import validate
from pydantic import ValidationError
from queue_support import MESSAGE, queued_app
from smtp_server import HOST, FaultHandler
from test_bounces import DOMAIN, bounce, sample
from test_inbound import customer_mail, serving
from test_inbound import started as inbound_started
from test_openapi import _inline
from test_queue_webhooks import SECRET, Receiver
from test_unsubscribe import ONE_CLICK, UNSUBSCRIBE, path_for

from mail_gateway import MailGateway, create_app
from mail_gateway.http import webhook_payloads
from mail_gateway.ingress.server import IngressServer
from mail_gateway.store import webhooks as stored_webhooks
from mail_gateway.suppression import events

FRIEND, GONE, LATER, BLOCKED = "friend@example.com", "gone@example.com", "later@example.com", "blocked@example.com"
LABELLED = {**MESSAGE, "tags": ["receipt"], "metadata": {"order": "42"}}
# Each webhook the gateway sends, with the model of each payload it was seen to carry below.
DELIVERY = {(f"message.{outcome}", "DeliveryEvent") for outcome in stored_webhooks.EVENT_TYPES}
REPORTED = {(f"message.{event}", "ReportedEvent") for event in ("bounced", "delivered", "delayed", "autoresponded",
                                                                 "unknown", "unsubscribed")}
INBOUND = {("message.inbound", "InboundEvent")}
receiving = pytest.fixture(serving, name="receiver")


def _models_of(hook: dict[str, Any]) -> list[str]:
    """The names of the models a webhook's payload may be."""
    schema = hook["post"]["requestBody"]["content"]["application/json"]["schema"]
    return [ref["$ref"].rpartition("/")[2] for ref in schema.get("anyOf", [schema])]


def _read(document: dict[str, Any], body: bytes, headers: dict[str, str]) -> tuple[str, str]:
    """Check one received webhook against the document; its type and the one model that reads it."""
    payload = json.loads(body)
    post = document["webhooks"][payload["type"]]["post"]
    for parameter in post["parameters"]:
        jsonschema.validate(headers[parameter["name"]], parameter["schema"])
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate(payload, {**schema, "components": document["components"]},
                        cls=jsonschema.Draft202012Validator)
    named = _models_of(document["webhooks"][payload["type"]])
    reading = []
    for model in [model for model in webhook_payloads.MODELS if model.__name__ in named]:
        try:
            model.model_validate_json(body)
        except ValidationError:
            continue
        reading.append(model.__name__)
    assert len(reading) == 1, (payload, named, reading)
    return payload["type"], reading[0]


def _seen(document: dict[str, Any], receiver: Receiver) -> set[tuple[str, str]]:
    return {_read(document, body, headers) for body, headers in list(receiver.received)}


def test_the_webhooks_are_those_the_gateway_sends_each_described(make_settings) -> None:
    document = create_app(make_settings(mail_backend="memory")).test_client().get("/openapi.json").get_json()
    validate(document)
    by_name: dict[str, set[str]] = {}
    for name, model in DELIVERY | REPORTED | INBOUND:
        by_name.setdefault(name, set()).add(model)
    assert {name: set(_models_of(hook)) for name, hook in document["webhooks"].items()} == by_name
    for name, hook in document["webhooks"].items():
        post = hook["post"]
        assert post["summary"] and set(post["responses"]) == {"2XX", "410", "default"}, name
        assert [p["name"] for p in post["parameters"]] == ["webhook-id", "webhook-timestamp", "webhook-signature"]
        assert all(p["in"] == "header" and p["required"] for p in post["parameters"])
    ids = [operation["operationId"] for where in ("paths", "webhooks") for item in document[where].values()
           for operation in item.values()]
    assert len(set(ids)) == len(ids)
    assert list(_inline(document["webhooks"], "webhooks")) == []
    # The vocabularies the payloads are made from.
    assert set(get_args(webhook_payloads.DeliveryOutcome.__value__)) == set(stored_webhooks.EVENT_TYPES)
    assert set(get_args(webhook_payloads.RejectReason.__value__)) == set(events.REJECT_REASONS)
    assert set(get_args(webhook_payloads.ReportedOutcome.__value__)) <= set(events.EVENT_TYPES)


def test_each_delivery_event_is_what_its_model_describes(queued_apps, make_settings, receiver,
                                                         smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={GONE: "550 5.1.1 no such user",
                                                            LATER: "451 4.2.0 try again later"}))
    queued = queued_app(make_settings, workers=False, **server.queued_settings(), gateway_webhook_url=receiver.url,
                        gateway_webhook_secret=SECRET, gateway_webhook_backoff_min=0.05,
                        gateway_api_keys="shop:key-shop", gateway_queue_lifetime=3.0)
    queued_apps.append(queued)
    key = {"Authorization": "Bearer key-shop"}
    # Suppressed after it was stored and before a worker claims it: a recipient suppressed already is left out.
    queued.send({**LABELLED, "to": [FRIEND, GONE, BLOCKED]}, **key)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    scheduled = queued.send({**MESSAGE, "send_at": later}, **key)
    assert queued.client.delete(f"/v1/messages/{scheduled['id']}", headers=key).status_code == 200
    assert queued.client.post("/v1/suppressions", json={"address": BLOCKED}, headers=key).status_code == 201
    queued.start_workers()
    # Sent once a worker runs, so that its first attempt (deferred) comes long before its lifetime ends (failed),
    # however slowly this machine gets to it.
    queued.send({**LABELLED, "to": [LATER]}, **key)
    document = queued.client.get("/openapi.json").get_json()
    wait_until(lambda: DELIVERY <= _seen(document, receiver), "every delivery event", timeout=20)
    assert _seen(document, receiver) == DELIVERY
    # What the model catches: a field added to a real payload, or one taken away.
    real = json.loads(receiver.received[0][0])
    with pytest.raises(ValidationError):
        webhook_payloads.DeliveryEvent.model_validate_json(json.dumps({**real, "data": {**real["data"], "new": 1}}))
    del real["data"]["recipient"]
    with pytest.raises(ValidationError):
        webhook_payloads.DeliveryEvent.model_validate_json(json.dumps(real))


def test_each_reported_event_is_what_its_model_describes(queued_apps, make_settings, receiver,
                                                         smtp_server) -> None:
    queued = queued_app(make_settings, **smtp_server.queued_settings(), gateway_bounce_domain=DOMAIN,
                        gateway_webhook_url=receiver.url, gateway_webhook_secret=SECRET,
                        gateway_webhook_backoff_min=0.05, **UNSUBSCRIBE)
    queued_apps.append(queued)
    message_id = queued.send({**LABELLED, "to": [GONE]})["id"]
    queued.wait_status(message_id, "delivered")
    failed = sample("postfix_failed.eml")
    reported_delivered = failed.replace(b"Action: failed", b"Action: delivered").replace(b"Status: 5.1.1",
                                                                                          b"Status: 2.0.0")
    for report in (failed, reported_delivered, sample("postfix_delayed.eml"), sample("vacation_autoreply.eml"),
                   sample("plain_reply.eml")):
        code, reply = bounce(queued, f"bounces+{message_id}@{DOMAIN}", report)
        assert code == 250, reply
    assert queued.client.post(path_for(FRIEND), data=ONE_CLICK).status_code == 200
    document = queued.client.get("/openapi.json").get_json()
    wait_until(lambda: REPORTED <= _seen(document, receiver), "every reported event", timeout=20)
    assert _seen(document, receiver) == REPORTED | {("message.delivered", "DeliveryEvent")}


def test_inbound_mail_is_what_its_model_describes(queued_apps, make_settings, receiver,
                                                  smtp_server) -> None:
    queued = inbound_started(queued_apps, make_settings, receiver, smtp_server)
    state = MailGateway.state(queued.app)
    with IngressServer(state.settings, state.sender, port=0) as ingress, \
            smtplib.SMTP(HOST, ingress.port, timeout=15) as client:
        assert client.sendmail("customer@example.net", ["support@example.com"], customer_mail()) == {}
        assert client.sendmail("", ["support@example.com"], b"Subject:\r\n\r\nno sender, no headers\r\n") == {}
    document = queued.client.get("/openapi.json").get_json()
    wait_until(lambda: len(receiver.received) >= 2, "both inbound messages")
    assert _seen(document, receiver) == INBOUND
