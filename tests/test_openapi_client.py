"""A client generated from ``/openapi.json`` by openapi-python-client reads every ``/v1`` route's answer as its
typed model, in direct and in queued delivery: the generator drops no schema and no endpoint, every operation is
named by its operationId under its tag, and every model it writes is one the document names.

The client is generated once per module (the generator takes seconds) and talks to the gateway served on a free
loopback port, over real sockets.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ingress_support import wait_until
from queue_support import MESSAGE, queued_app
from smtp_server import HOST
from werkzeug.serving import make_server

from mail_gateway import create_app
from mail_gateway.settings import GatewaySettings

PACKAGE = "mail_gateway_client"
API_KEY = "client-key"
# message/rfc822 is the right type for a message as delivered; the generator reads it as bytes when told to.
GENERATOR_CONFIG = {"post_hooks": [], "content_type_overrides": {"message/rfc822": "application/octet-stream"}}
TAGS = {"messages", "queue", "outbox", "health", "openapi", "templates", "suppressions"}
ATTACHMENT = {"filename": "note.txt", "content": base64.b64encode(b"attached bytes").decode()}
RAW = {"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
       "data": base64.b64encode(b"Subject: raw\r\n\r\nbody\r\n").decode()}
QUEUED_OFF = "urn:mail-gateway:problem:queued-delivery-off"


def _document() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:  # module scope: the per-test isolation has not run yet
        for name in [n for n in os.environ if n.upper().startswith(("MAIL_", "GATEWAY_"))]:
            env.delenv(name)
        settings = GatewaySettings(_env_file=None, gateway_env="testing", mail_backend="memory",
                                   gateway_api_keys=API_KEY)
        return create_app(settings).test_client().get("/openapi.json").get_json()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return _document()


@pytest.fixture(scope="module")
def generated(document, tmp_path_factory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("generated")
    (root / "openapi.json").write_text(json.dumps(document))
    (root / "config.json").write_text(json.dumps(GENERATOR_CONFIG))
    run = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(root / "openapi.json"),
         "--output-path", str(root / PACKAGE), "--meta", "none", "--config", str(root / "config.json"),
         "--fail-on-warning"], capture_output=True, text=True, timeout=300, check=False)
    said = run.stdout + run.stderr
    assert run.returncode == 0 and "Warning" not in said and "Unable to" not in said, said
    sys.path.insert(0, str(root))
    yield importlib.import_module(PACKAGE)
    sys.path.remove(str(root))
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


@contextmanager
def served(app: Any) -> Iterator[str]:
    server = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="gateway-under-test", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


class Api:
    """Calls the generated client's operations by tag and operationId."""

    def __init__(self, package: ModuleType, base_url: str) -> None:
        self.package = package
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.file = importlib.import_module(f"{PACKAGE}.types").File  # what a binary answer is read into
        self.client = package.AuthenticatedClient(base_url=base_url, token=API_KEY, timeout=30)

    def __call__(self, tag: str, operation_id: str, *args: Any, **kwargs: Any) -> Any:
        module = importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")
        return module.sync_detailed(*args, client=self.client, **kwargs)

    def parsed(self, model: str, response: Any, status: int) -> Any:
        assert response.status_code == status, (response.status_code, response.content)
        wanted = self.file if model == "File" else getattr(self.models, model)
        assert isinstance(response.parsed, wanted), (model, response.parsed)
        return response.parsed

    def problem(self, response: Any, status: int, problem_type: str) -> None:
        assert self.parsed("Problem", response, status).type_ == problem_type


def _later(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def _message(api: Api, **fields: Any) -> Any:
    return api.models.Message.from_dict({**MESSAGE, "attachments": [ATTACHMENT], **fields})


def test_the_generator_names_every_model_after_the_document(generated, document) -> None:
    named = {key for key in document["components"]["schemas"]} | {
        schema["title"] for schema in document["components"]["schemas"].values() if "title" in schema}
    models = importlib.import_module(f"{PACKAGE}.models")
    assert set(models.__all__) <= named, sorted(set(models.__all__) - named)
    operations = {path.parent.name: path.stem for path in Path(generated.__file__).parent.glob("api/*/*.py")
                  if path.stem != "__init__"}
    assert set(operations) == TAGS


def _outbox(api: Api, message_id: str) -> None:
    """Every /v1/outbox route on the kept copy of the message with this Message-ID."""
    page = api.parsed("OutboxPage", api("outbox", "list_outbox_messages", limit=100), 200)
    [summary] = [m for m in page.messages if m.message_id == message_id]
    detail = api.parsed("MessageDetail", api("outbox", "get_outbox_message", summary.id), 200)
    assert detail.subject == MESSAGE["subject"] and detail.attachments[0].filename == ATTACHMENT["filename"]
    raw = api.parsed("File", api("outbox", "get_outbox_message_raw", summary.id), 200)
    assert b"Subject: Queued" in raw.payload.read()
    attached = api.parsed("File", api("outbox", "get_outbox_attachment", summary.id, 0), 200)
    assert attached.payload.read() == b"attached bytes"
    assert api("outbox", "delete_outbox_message", summary.id).status_code == 204
    api.problem(api("outbox", "get_outbox_message", summary.id), 404, "urn:mail-gateway:problem:no-such-message")
    assert api("outbox", "clear_outbox").status_code == 204
    assert api.parsed("OutboxPage", api("outbox", "list_outbox_messages"), 200).total == 0


def test_a_generated_client_reads_every_direct_answer(generated, document, make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_api_keys=API_KEY))
    assert app.test_client().get("/openapi.json").get_json() == document
    with served(app) as base_url:
        api = Api(generated, base_url)
        sent = api.parsed("SendResponse", api("messages", "send_message", body=_message(api),
                                              idempotency_key="direct-1"), 202)
        assert sent.backend == "memory" and sent.recipients[0].status == "accepted"
        batch = api.models.Batch.from_dict({"messages": [MESSAGE, {**MESSAGE, "to": []}]})
        results = api.parsed("BatchResult", api("messages", "send_batch", body=batch), 200).results
        assert [type(r).__name__ for r in results] == ["BatchAccepted", "BatchFailed"]
        assert results[1].error.status == 422
        raw = api.parsed("SendResponse", api("messages", "send_raw", body=api.models.RawMessage.from_dict(RAW)),
                         202)
        assert raw.recipients[0].email == "friend@example.com"
        for response in (api("queue", "list_messages"), api("queue", "get_message", "nope"),
                         api("queue", "retry_message", "nope"), api("queue", "cancel_message", "nope")):
            api.problem(response, 404, QUEUED_OFF)
        assert api.parsed("Health", api("health", "get_health"), 200).status == "ok"
        assert api.parsed("Ready", api("health", "get_readiness"), 200).backend == "memory"
        _outbox(api, sent.message_id)
        _templates(api)


def _templates(api: Api) -> None:
    """Every /v1/templates route, and a message sent with a template."""
    new = api.models.NewTemplate.from_dict({"name": "hello", "subject": "Hi {{ who }}", "html": "<p>{{ who }}</p>"})
    made = api.parsed("TemplateDetail", api("templates", "create_template", body=new), 201)
    assert made.version == 1 and made.source == "store"
    api.problem(api("templates", "create_template", body=new), 409, "urn:mail-gateway:problem:template-exists")
    parts = api.models.TemplateParts.from_dict({"subject": "Hello {{ who }}", "text": "Hello {{ who }}"})
    assert api.parsed("TemplateDetail", api("templates", "replace_template", "hello", body=parts), 200).version == 2
    assert api.parsed("TemplateDetail", api("templates", "get_template", "hello"), 200).text == "Hello {{ who }}"
    listed = api.parsed("TemplateList", api("templates", "list_templates"), 200)
    assert [t.name for t in listed.templates] == ["hello"]
    variables = api.models.RenderRequest.from_dict({"variables": {"who": "Ann"}})
    rendered = api.parsed("RenderedTemplate", api("templates", "render_template", "hello", body=variables), 200)
    assert rendered.subject == "Hello Ann"
    failed = api.parsed("Problem", api("templates", "render_template", "hello",
                                       body=api.models.RenderRequest.from_dict({"variables": {}})), 422)
    assert failed.type_ == "urn:mail-gateway:problem:template-error" and failed.variable == "who"
    sent = api("messages", "send_message", body=api.models.Message.from_dict(
        {"from": "app@example.com", "to": ["ann@example.com"], "template": "hello", "variables": {"who": "Ann"}}))
    assert api.parsed("SendResponse", sent, 202).recipients[0].status == "accepted"
    assert api("templates", "delete_template", "hello").status_code == 204
    api.problem(api("templates", "get_template", "hello"), 404, "urn:mail-gateway:problem:no-such-template")


def test_a_generated_client_reads_every_queued_answer(generated, document, make_settings, queued_apps) -> None:
    queued = queued_app(make_settings, mail_backend="memory", gateway_api_keys=API_KEY)
    queued_apps.append(queued)
    assert queued.client.get("/openapi.json").get_json() == document
    with served(queued.app) as base_url:
        api = Api(generated, base_url)
        sent = api.parsed("QueuedResponse", api("messages", "send_message", body=_message(api)), 202)
        assert sent.status == "queued" and sent.recipients[0].status == "queued"
        later = api.parsed("QueuedResponse", api("messages", "send_message", body=_message(api, send_at=_later(600))),
                           202)
        assert later.status == "scheduled"
        raw = api.parsed("QueuedResponse", api("messages", "send_raw", body=api.models.RawMessage.from_dict(RAW)),
                         202)
        assert raw.recipients[0].email == "friend@example.com"
        batch = api.models.Batch.from_dict({"messages": [MESSAGE, {**MESSAGE, "to": []},
                                                         {**MESSAGE, "send_at": _later(600)}]})
        results = api.parsed("BatchResult", api("messages", "send_batch", body=batch), 200).results
        assert [(type(r).__name__, getattr(r, "status", None)) for r in results] == [
            ("BatchQueued", "queued"), ("BatchFailed", "failed"), ("BatchQueued", "scheduled")]
        wait_until(lambda: api("queue", "get_message", sent.id).parsed.status == "delivered",
                   f"message {sent.id} is delivered", timeout=15)
        status = api.parsed("QueuedMessageStatus", api("queue", "get_message", sent.id), 200)
        assert status.recipients[0].status == "delivered" and status.events[0].type_ == "delivered"
        listed = api.parsed("QueuedMessageList", api("queue", "list_messages", limit=100), 200)
        assert listed.total == 5 and {m.id for m in listed.messages} >= {sent.id, later.id, raw.id}
        retried = api.parsed("QueuedMessageStatus", api("queue", "retry_message", later.id), 202)
        assert retried.id == later.id
        canceled = api.parsed("QueuedMessageStatus", api("queue", "cancel_message", results[2].id), 200)
        assert canceled.status == "canceled"
        api.problem(api("queue", "get_message", "nope"), 404, "urn:mail-gateway:problem:no-such-message")
        _outbox(api, sent.message_id)
