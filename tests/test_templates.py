"""Stored templates: CRUD over HTTP on both stores, a folder of template files, the render endpoint, and a
template sent through every way in (one message, a batch, the Flask extension, ``mail-gateway send``), rendered
into the same request the composer and the pipeline see."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from api_helpers import assert_problem, fields, outbox, parsed
from click.testing import CliRunner
from flask import Flask

from mail_gateway import MailGateway, create_app
from mail_gateway.cli import main
from mail_gateway.errors import ConfigurationError
from mail_gateway.mail.reader import MessageReader
from mail_gateway.templating import library

STYLE = "<style>p.lead { color: #c00; } a { font-weight: bold; }</style>"
WELCOME = {"name": "welcome", "subject": "Welcome, {{ name }}",
           "html": f"<html><head>{STYLE}</head><body><p class=\"lead\">Hello {{{{ name }}}},</p>\n"
                   "<p>confirm at <a href=\"{{ url }}\">your page</a>.</p></body></html>"}
SEND = {"from": "app@example.com", "to": ["ann@example.com"], "template": "welcome",
        "variables": {"name": "Ann", "url": "https://example.com/c/1"}}


@pytest.fixture
def app(make_settings):
    return create_app(make_settings(mail_backend="memory"))


@pytest.fixture
def client(app):
    return app.test_client()


def created(client, body: dict = WELCOME) -> dict:
    response = client.post("/v1/templates", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# -- CRUD ---------------------------------------------------------------------------------------------------


def test_templates_are_created_read_changed_listed_and_deleted_on_both_stores(make_settings, store_url) -> None:
    client = create_app(make_settings(mail_backend="memory", gateway_store_url=store_url)).test_client()
    first = created(client)
    assert (first["name"], first["version"], first["source"]) == ("welcome", 1, "store")
    assert first["subject"] == WELCOME["subject"] and first["text"] is None
    assert client.get("/v1/templates/welcome").get_json()["html"] == WELCOME["html"]
    assert_problem(client.post("/v1/templates", json=WELCOME), 409, "template-exists")
    changed = client.put("/v1/templates/welcome", json={"subject": "Hi {{ name }}", "text": "Hi {{ name }}"})
    assert changed.status_code == 200 and changed.get_json()["version"] == 2
    assert client.get("/v1/templates/welcome").get_json()["html"] is None  # a PUT replaces the whole template
    created(client, {"name": "receipt", "subject": "Receipt", "text": "Thanks"})
    listing = client.get("/v1/templates").get_json()["templates"]
    assert [(t["name"], t["version"], t["source"]) for t in listing] == [("receipt", 1, "store"),
                                                                         ("welcome", 2, "store")]
    assert client.delete("/v1/templates/welcome").status_code == 204
    assert_problem(client.get("/v1/templates/welcome"), 404, "no-such-template")
    assert_problem(client.delete("/v1/templates/welcome"), 404, "no-such-template")
    assert_problem(client.put("/v1/templates/welcome", json={"subject": "x", "text": "y"}), 404, "no-such-template")


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "bad name", "subject": "x", "text": "y"}, "name"),
    ({"name": "welcome", "subject": "x"}, "text"),
    ({"name": "welcome", "subject": "x", "text": "y", "colour": "red"}, "colour"),
    ({"name": "welcome", "subject": "x", "html": "<p>{% if %}</p>"}, "html"),
])
def test_an_unusable_template_is_refused_naming_the_field(client, body, field) -> None:
    problem = assert_problem(client.post("/v1/templates", json=body), 422)
    assert field in fields(problem)


def test_a_syntax_error_names_the_part_and_its_line(client) -> None:
    problem = assert_problem(client.post("/v1/templates", json={
        "name": "broken", "subject": "Hi", "html": "<p>one</p>\n<p>two</p>\n<p>{{ name }</p>"}), 422, "template-error")
    assert (problem["template"], problem["part"], problem["line"]) == ("broken", "html", 3)
    assert "line 3" in problem["detail"] and fields(problem) == ["html"]


# -- sending ------------------------------------------------------------------------------------------------


def test_a_template_is_sent_with_css_inlined_a_derived_text_part_and_its_version(app, client) -> None:
    created(client)
    client.put("/v1/templates/welcome", json={k: v for k, v in WELCOME.items() if k != "name"})
    response = client.post("/v1/messages", json=SEND)
    assert response.status_code == 202, response.get_data(as_text=True)
    message = parsed(outbox(app)[0])
    assert message["Subject"] == "Welcome, Ann"
    assert message["X-Template"] == "welcome; version=2"
    html = message.get_body(("html",)).get_content()
    assert '<p class="lead" style="color: #c00;">Hello Ann,</p>' in html and "<style>" not in html
    assert 'style="font-weight: bold;"' in html
    text = message.get_body(("plain",)).get_content()
    assert "Hello Ann," in text and "your page (https://example.com/c/1)" in text and "color" not in text


def test_a_change_is_sent_at_once_by_its_process_and_by_another_once_it_looks_again(make_settings, tmp_path,
                                                                                     monkeypatch) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite3"
    one, other = (create_app(make_settings(mail_backend="memory", gateway_store_url=store_url)) for _ in range(2))
    created(one.test_client())
    for app in (one, other):
        assert app.test_client().post("/v1/messages", json=SEND).status_code == 202
    one.test_client().put("/v1/templates/welcome", json={"subject": "Changed {{ name }}", "text": "x"})
    one.test_client().post("/v1/messages", json=SEND)
    assert parsed(outbox(one)[-1])["X-Template"] == "welcome; version=2"
    monkeypatch.setattr("mail_gateway.templating.library.FRESH_SECONDS", 0.0)  # the other looks at the store again
    other.test_client().post("/v1/messages", json=SEND)
    assert parsed(outbox(other)[-1])["Subject"] == "Changed Ann"
    one.test_client().delete("/v1/templates/welcome")
    assert_problem(other.test_client().post("/v1/messages", json=SEND), 422)

@pytest.mark.parametrize("change", ["replace", "delete"])
def test_a_send_that_read_a_template_as_it_changed_leaves_no_old_version_for_later_sends(app, client, monkeypatch,
                                                                                        change) -> None:
    # Only a change may make this process look at the store again, not the clock: the test does not race it.
    monkeypatch.setattr(library, "FRESH_SECONDS", 3600.0)
    created(client)
    read_old, changed = threading.Event(), threading.Event()
    compile_template = library.compile_template

    def compiling(name, version, sources, **options):  # the first send has read version 1 and is compiling it
        if version == 1 and not read_old.is_set():
            read_old.set()
            assert changed.wait(30)
        return compile_template(name, version, sources, **options)

    monkeypatch.setattr(library, "compile_template", compiling)
    first = threading.Thread(target=lambda: app.test_client().post("/v1/messages", json=SEND))
    first.start()
    assert read_old.wait(30)
    if change == "replace":
        assert client.put("/v1/templates/welcome", json={"subject": "New {{ name }}", "text": "x"}).status_code == 200
    else:
        assert client.delete("/v1/templates/welcome").status_code == 204
    changed.set()
    first.join(30)
    assert parsed(outbox(app)[0])["X-Template"] == "welcome; version=1"  # it began before the change: the old one
    after = client.post("/v1/messages", json=SEND)
    if change == "replace":  # it kept version 1 as fresh, and sent it after the PUT had answered version 2
        assert after.status_code == 202 and parsed(outbox(app)[-1])["X-Template"] == "welcome; version=2"
    else:
        assert fields(assert_problem(after, 422, "invalid-message")) == ["template"]


def test_html_is_escaped_and_text_and_subject_are_not(app, client) -> None:
    created(client, {"name": "note", "subject": "{{ who }} says", "text": "{{ who }}: {{ what }}",
                     "html": "<p>{{ who }}: {{ what }}</p>"})
    sent = client.post("/v1/messages", json={**SEND, "template": "note",
                                             "variables": {"who": "Tom & Jerry", "what": "<b>hi</b>"}})
    assert sent.status_code == 202, sent.get_data(as_text=True)
    message = parsed(outbox(app)[0])
    assert message["Subject"] == "Tom & Jerry says"
    assert message.get_body(("plain",)).get_content().strip() == "Tom & Jerry: <b>hi</b>"
    assert "<p>Tom &amp; Jerry: &lt;b&gt;hi&lt;/b&gt;</p>" in message.get_body(("html",)).get_content()


def test_a_missing_variable_is_a_422_naming_it_never_an_empty_string(app, client) -> None:
    created(client)
    problem = assert_problem(client.post("/v1/messages", json={**SEND, "variables": {"url": "https://x.org"}}),
                             422, "template-error")
    assert (problem["template"], problem["variable"]) == ("welcome", "name")
    assert problem["part"] == "subject" and problem["line"] == 1
    assert fields(problem) == ["variables.name"] and "'name'" in problem["detail"]
    assert outbox(app) == []


def test_a_template_and_its_own_subject_text_or_html_are_refused_together(client) -> None:
    created(client)
    problem = assert_problem(client.post("/v1/messages", json={**SEND, "subject": "Mine", "text": "Mine"}), 422)
    assert fields(problem) == ["subject", "text"]


def test_an_unknown_template_is_a_422_naming_the_field(client) -> None:
    problem = assert_problem(client.post("/v1/messages", json={**SEND, "template": "nothing"}), 422)
    assert fields(problem) == ["template"] and "nothing" in problem["errors"][0]["message"]


def test_a_rendered_subject_holding_a_line_break_is_refused(client) -> None:
    created(client)
    problem = assert_problem(client.post("/v1/messages", json={
        **SEND, "variables": {"name": "Ann\r\nBcc: victim@example.com", "url": "x"}}), 422)
    assert fields(problem) == ["subject"]


@pytest.mark.parametrize(("subject", "line"), [("a\u0090b", 1), ("{{ name }}\x07", 1),
                                              ("{% if name %}\n\x1bHi{% endif %}", 2)])
def test_a_subject_writing_a_control_character_is_refused_when_saved_naming_its_line(client, subject, line) -> None:
    # Stored, it would be refused by every send that rendered it.
    problem = assert_problem(client.post("/v1/templates", json={**WELCOME, "subject": subject}), 422)
    assert fields(problem) == ["subject"] and "control character" in problem["detail"]
    assert f"line {line}" in problem["detail"]
    assert client.get("/v1/templates/welcome").status_code == 404
    # Line breaks written around the subject are its file's last newline, or stripped: still accepted.
    assert created(client, {**WELCOME, "subject": "Welcome, {{ name }}\n"})["name"] == "welcome"


@pytest.mark.parametrize("part", ["subject", "text", "html"])
def test_a_template_holding_a_lone_surrogate_is_refused_naming_the_part_and_nothing_is_stored(client, part) -> None:
    # JSON can carry "\ud800", which no store and no mail encoding can hold: it was a 500 from the store's driver.
    body = {**WELCOME, part: WELCOME.get(part, "") + "\ud800"}
    assert fields(assert_problem(client.post("/v1/templates", json=body), 422)) == [part]
    assert_problem(client.get("/v1/templates/welcome"), 404)
    created(client)
    replacement = {"subject": "Hi", "text": "Hi", part: "Hi \udfff"}
    assert fields(assert_problem(client.put("/v1/templates/welcome", json=replacement), 422)) == [part]
    assert client.get("/v1/templates/welcome").get_json()["version"] == 1


def test_a_template_holding_a_nul_is_refused_naming_the_part_on_both_stores(make_settings, store_url) -> None:
    # PostgreSQL keeps no NUL in text: POST and PUT reached it and answered 503 store-unavailable (retry later).
    client = create_app(make_settings(mail_backend="memory", gateway_store_url=store_url)).test_client()
    for part in ("subject", "text", "html"):
        body = {**WELCOME, part: "Hello\x00there"}
        assert fields(assert_problem(client.post("/v1/templates", json=body), 422, "invalid-message")) == [part]
    created(client)
    for part in ("subject", "text", "html"):
        replacement = {"subject": "Hi", "text": "Hi", part: "Hi\x00"}
        assert fields(assert_problem(client.put("/v1/templates/welcome", json=replacement), 422)) == [part]
    assert client.get("/v1/templates/welcome").get_json()["version"] == 1


def test_a_name_holding_a_nul_is_no_template_on_both_stores(make_settings, store_url) -> None:
    # PostgreSQL cannot compare a NUL in text: each route asked it and answered 503 store-unavailable (retry later).
    client = create_app(make_settings(mail_backend="memory", gateway_store_url=store_url)).test_client()
    created(client)
    assert_problem(client.get("/v1/templates/welcome%00"), 404, "no-such-template")
    assert_problem(client.put("/v1/templates/welcome%00", json={"subject": "x", "text": "y"}), 404, "no-such-template")
    assert_problem(client.delete("/v1/templates/welcome%00"), 404, "no-such-template")
    assert_problem(client.post("/v1/templates/welcome%00/render", json={}), 404, "no-such-template")
    assert client.get("/v1/templates/welcome").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(("name", "slug", "said"), [
    ("Ann\r\nBcc: victim@example.com", "invalid-message", "header injection"),
    # css-inline failed on it first, saying the CSS could not be inlined
    ("Ann \ud800", "template-error", "lone surrogate (U+D800)")])
def test_the_render_endpoint_refuses_what_a_send_would_refuse(client, name, slug, said) -> None:
    created(client)
    variables = {"name": name, "url": "x"}
    sent = assert_problem(client.post("/v1/messages", json={**SEND, "variables": variables}), 422, slug)
    previewed = assert_problem(client.post("/v1/templates/welcome/render", json={"variables": variables}), 422, slug)
    assert fields(previewed) == fields(sent) == ["subject"]
    assert previewed["errors"] == sent["errors"] and said in sent["errors"][0]["message"]


def test_each_batch_item_may_use_a_template_and_fails_alone(app, client) -> None:
    created(client)
    response = client.post("/v1/messages/batch", json={"messages": [
        SEND, {**SEND, "variables": {}}, {"from": "app@example.com", "to": "b@example.com", "subject": "Plain",
                                         "text": "plain"}]})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["accepted", "failed", "accepted"]
    assert results[1]["error"]["type"] == "urn:mail-gateway:problem:template-error"
    assert [parsed(m)["Subject"] for m in outbox(app)] == ["Welcome, Ann", "Plain"]


def test_the_render_endpoint_answers_what_would_be_sent_without_sending(app, client) -> None:
    created(client)
    response = client.post("/v1/templates/welcome/render", json={"variables": SEND["variables"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["subject"] == "Welcome, Ann" and (body["template"], body["version"]) == ("welcome", 1)
    assert 'style="color: #c00;"' in body["html"] and "Hello Ann," in body["text"]
    assert outbox(app) == []
    assert_problem(client.post("/v1/templates/nothing/render", json={"variables": {}}), 404, "no-such-template")
    assert_problem(client.post("/v1/templates/welcome/render", json={"variables": {}}), 422, "template-error")


def test_any_valid_api_key_may_use_the_templates(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory", gateway_api_keys="a:key-a,b:key-b")).test_client()
    assert_problem(client.get("/v1/templates"), 401)
    assert client.post("/v1/templates", json=WELCOME, headers={"Authorization": "Bearer key-a"}).status_code == 201
    sent = client.post("/v1/messages", json=SEND, headers={"Authorization": "Bearer key-b"})
    assert sent.status_code == 202, sent.get_data(as_text=True)


# -- the folder of template files -----------------------------------------------------------------------------


def template_files(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "welcome.subject").write_text("Hello {{ name }} from the files\n", encoding="utf-8")
    (directory / "welcome.html").write_text("<p>Hi {{ name }}</p>", encoding="utf-8")
    (directory / "welcome.txt").write_text("Hi {{ name }}, in plain text\n", encoding="utf-8")
    (directory / "reset.subject").write_text("Reset", encoding="utf-8")
    (directory / "reset.txt").write_text("Reset with {{ code }}", encoding="utf-8")
    (directory / "README.md").write_text("not a template", encoding="utf-8")
    return directory


def test_a_folder_of_template_files_is_read_only_and_wins_over_the_store(make_settings, tmp_path) -> None:
    settings = make_settings(mail_backend="memory", gateway_templates_dir=template_files(tmp_path / "templates"))
    app = create_app(settings)
    client = app.test_client()
    listing = client.get("/v1/templates").get_json()["templates"]
    assert [(t["name"], t["source"]) for t in listing] == [("reset", "files"), ("welcome", "files")]
    assert_problem(client.post("/v1/templates", json=WELCOME), 409, "template-read-only")
    assert_problem(client.put("/v1/templates/welcome", json={"subject": "x", "text": "y"}), 409,
                   "template-read-only")
    assert_problem(client.delete("/v1/templates/reset"), 409, "template-read-only")
    assert client.post("/v1/messages", json={**SEND, "variables": {"name": "Ann"}}).status_code == 202
    message = parsed(outbox(app)[0])
    assert message["Subject"] == "Hello Ann from the files"  # the file's final line break is not the subject's
    assert message.get_body(("plain",)).get_content().strip() == "Hi Ann, in plain text"
    assert message["X-Template"].startswith("welcome; file=")


def test_a_name_stored_before_its_file_appeared_is_served_from_the_file(make_settings, tmp_path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite3"
    created(create_app(make_settings(mail_backend="memory", gateway_store_url=store_url)).test_client())
    app = create_app(make_settings(mail_backend="memory", gateway_store_url=store_url,
                                   gateway_templates_dir=template_files(tmp_path / "templates")))
    assert app.test_client().get("/v1/templates/welcome").get_json()["source"] == "files"


@pytest.mark.parametrize(("files", "wording"), [
    ({}, "does not exist"),
    ({"welcome.subject": "Hi", "welcome.html": "<p>\n{% for %}</p>"}, "welcome.html line 2"),
    ({"welcome.subject": "Hi", "welcome.html": "<p>{{ ''.__class__ }}</p>"}, "welcome.html line 1"),
    ({"welcome.txt": "no subject"}, "welcome.subject"),
    ({"bad name.subject": "x", "bad name.txt": "y"}, "bad name"),
])
def test_an_unusable_templates_dir_stops_start_up_naming_it(make_settings, tmp_path, files, wording) -> None:
    directory = tmp_path / "templates"
    if files:
        directory.mkdir()
        for name, content in files.items():
            (directory / name).write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="GATEWAY_TEMPLATES_DIR") as caught:
        create_app(make_settings(mail_backend="memory", gateway_templates_dir=directory))
    assert wording in str(caught.value) and caught.value.variable == "GATEWAY_TEMPLATES_DIR"


# -- the extension and the command line ----------------------------------------------------------------------


def test_the_extension_sends_a_template_as_flask_mail_users_write_a_message(tmp_path) -> None:
    app = Flask(__name__)
    app.config.update(TESTING=True, GATEWAY_TEMPLATES_DIR=str(template_files(tmp_path / "templates")),
                      MAIL_DEFAULT_SENDER="App <app@example.com>")
    mail = MailGateway(app)
    with app.app_context():
        result = mail.send_template("welcome", recipients=["ann@example.com"], variables={"name": "Ann"},
                                    cc=["boss@example.com"], reply_to="help@example.com")
    assert [r.email for r in result.accepted] == ["ann@example.com", "boss@example.com"]
    message = parsed(MailGateway.state(app).backend.messages[0])
    assert message["Subject"] == "Hello Ann from the files" and message["From"] == "App <app@example.com>"
    assert message["Reply-To"] == "help@example.com" and message["Cc"] == "boss@example.com"
    with app.app_context(), pytest.raises(Exception, match="name") as caught:
        mail.send_template("welcome", recipients=["ann@example.com"])
    assert caught.value.errors[0].field == "variables.name"


def test_the_command_line_sends_a_stored_template_with_its_variables(make_settings, monkeypatch, tmp_path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite3"
    created(create_app(make_settings(mail_backend="memory", gateway_store_url=store_url)).test_client())
    monkeypatch.setenv("GATEWAY_STORE_URL", store_url)
    monkeypatch.setenv("MAIL_BACKEND", "file")
    monkeypatch.setenv("MAIL_FILE_PATH", str(tmp_path / "sent"))
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "ann@example.com",
                                       "--template", "welcome", "--var", "name=Ann",
                                       "--var", "url=https://example.com/c/1"])
    assert result.exit_code == 0, result.output
    [message] = [MessageReader(p.read_bytes()) for p in (tmp_path / "sent").glob("*.eml")]
    assert message.subject == "Welcome, Ann" and "Hello Ann," in message.text
    missing = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "ann@example.com",
                                        "--template", "welcome", "--var", "url=x"])
    assert missing.exit_code == 2 and "--var: " in missing.output and "'name'" in missing.output
    both = CliRunner().invoke(main, ["send", "--to", "ann@example.com", "--template", "welcome", "--var", "novalue"])
    assert both.exit_code == 2 and "key=value" in both.output


def test_the_outbox_shows_which_template_and_version_a_kept_message_came_from(app, client) -> None:
    created(client)
    client.post("/v1/messages", json=SEND)
    client.post("/v1/messages", json={"from": "app@example.com", "to": "b@example.com", "subject": "Plain",
                                      "text": "x"})
    plain, templated = sorted(client.get("/v1/outbox").get_json()["messages"], key=lambda m: m["subject"])
    assert client.get(f"/v1/outbox/{templated['id']}").get_json()["template"] == "welcome; version=1"
    assert client.get(f"/v1/outbox/{plain['id']}").get_json()["template"] is None
    # The list says it too; the inbox page shows it from there (test_inbox_browser checks it in Chromium).
    assert (templated["template"], plain["template"]) == ("welcome; version=1", None)


def test_the_readme_example_sends_what_the_readme_says(app, client) -> None:
    created(client, {"name": "welcome", "subject": "Welcome, {{ name }}",
                     "html": "<style>p.lead { color: #0b5; }</style><p class=\"lead\">Hello {{ name }},</p>"
                             "<p><a href=\"{{ url }}\">Confirm your address</a></p>"})
    variables = {"name": "Ann", "url": "https://example.com/confirm/1"}
    sent = client.post("/v1/messages", json={"from": "app@example.com", "to": "ann@example.com",
                                             "template": "welcome", "variables": variables})
    assert sent.status_code == 202
    message = parsed(outbox(app)[0])
    assert message["Subject"] == "Welcome, Ann" and message["X-Template"] == "welcome; version=1"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == \
        "Hello Ann,\n\nConfirm your address (https://example.com/confirm/1)\n"
    assert '<p class="lead" style="color: #0b5;">' in message.get_body(("html",)).get_content()
    problem = client.post("/v1/messages", json={"from": "app@example.com", "to": "ann@example.com",
                                                "template": "welcome", "variables": {"url": "x"}}).get_json()
    assert problem == {
        "type": "urn:mail-gateway:problem:template-error", "title": "Template cannot be used", "status": 422,
        "detail": "template 'welcome' (subject, line 1): the variable 'name' is undefined; add 'name' to variables",
        "errors": [{"field": "variables.name", "message": "template 'welcome' (subject, line 1): the variable 'name' "
                                                          "is undefined; add 'name' to variables"}],
        "template": "welcome", "part": "subject", "line": 1, "variable": "name"}


@pytest.mark.parametrize(("html", "text"), [
    ("<h1>Hi</h1><ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td>"
     "</tr></table>", "Hi\n\n- one\n- two\n\na 1\nb 2\n"),
    ("<p>a&nbsp;<b>bold</b> &amp; <a href='https://x.org/'>https://x.org/</a></p><pre>  kept\n    as is</pre>",
     "a bold & https://x.org/\n\n  kept\n    as is\n"),
    ("<head><title>T</title><style>p{}</style></head><p>line<br>break<img alt='[logo]'></p><script>x()</script>",
     "line\nbreak[logo]\n"),
    # a link whose only text is an image's: its address after the image's text, not run into it
    ("<p><a href='https://x.org/'><img alt='Logo' src='l.png'></a> <a href='https://y.org/'></a></p>",
     "Logo https://x.org/ https://y.org/\n"),
])
def test_the_text_part_made_from_html_keeps_its_blocks_lines_and_links(client, html, text) -> None:
    created(client, {"name": "t", "subject": "s", "html": html})
    assert client.post("/v1/templates/t/render", json={"variables": {}}).get_json()["text"] == text
