"""The documentation stays true to the code: the generated references cover every setting and every route, the
pages that messages and the README point at exist, and the README stays a short entry page."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest
from flask import Flask

from mail_gateway.errors import ConfigurationError
from mail_gateway.extension import MailGateway
from mail_gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parent.parent
HOOKS = ROOT / "docs" / "hooks"
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", HOOKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_lists_every_setting_with_its_type_and_default() -> None:
    reference = hook("settings_reference").render("<!-- settings-reference -->")
    for name, field in GatewaySettings.model_fields.items():
        [row] = [line for line in reference.splitlines() if line.startswith(f"| `{name.upper()}` |")]
        assert row.count(" | ") >= 3 and "Accepted:" in row or not field.description, row
    assert "| `MAIL_PORT` | integer | `25` |" in reference
    assert "| `GATEWAY_QUEUE_LIFETIME` | number | `432000` (5 days) |" in reference
    assert "| `GATEWAY_STORE_URL` | secret string | `sqlite:///.mail-gateway.sqlite3` |" in reference


def test_a_settings_table_naming_no_setting_fails_the_build() -> None:
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match="MAIL_SEVRER"):
        hook("settings_reference").render("<!-- settings: MAIL_SERVER MAIL_SEVRER -->")


def test_the_api_reference_lists_every_route_the_app_serves() -> None:
    openapi = hook("openapi_reference")
    document = openapi.openapi_document()
    reference = openapi.reference(document)
    for path, item in document["paths"].items():
        for method in item:
            assert f"### `{method.upper()} {path}`" in reference
    for name in document["webhooks"]:
        assert f"### `POST {name}`" in reference
    for name in document["components"]["schemas"]:
        assert f"{{#schema-{name.lower()}}}" in reference


def test_the_http_api_page_names_every_tag_and_operation_id_of_the_document() -> None:
    # The page lists what generated clients name their modules and calls after; a route added without it
    # there left readers looking for a call the page says does not exist.
    document = hook("openapi_reference").openapi_document()
    page = (ROOT / "docs" / "http-api.md").read_text(encoding="utf-8")
    start = page.index("Every operation has an `operationId` and a tag")
    paragraph = page[start:page.index("\n\n", start)]
    named = set(re.findall(r"`(\w+)`", paragraph))
    operations = [operation for item in document["paths"].values() for operation in item.values()]
    missing = sorted({name for operation in operations for name in (*operation["tags"], operation["operationId"])}
                     - named)
    assert not missing, f"docs/http-api.md does not name {missing}"


def _commands(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        context = click.Context(command)  # the lazily loaded commands too
        for name in command.list_commands(context):
            yield from _commands(command.get_command(context, name), (*path, name))


def _listed_commands(block: str) -> set[tuple[str, ...]]:
    """``mail-gateway a b|c --opt`` lists (a,), (a, b) and (a, c): the words before the first that is no name."""
    listed: set[tuple[str, ...]] = set()
    for line in block.splitlines():
        words = line.split("#")[0].split()
        path: tuple[str, ...] = ()
        for word in words[1:] if words[:1] == ["mail-gateway"] else []:
            if not re.fullmatch(r"[a-z]+(\|[a-z]+)*", word):
                break
            listed.update((*path, name) for name in word.split("|"))
            path = (*path, word.split("|")[0])
    return listed


def test_the_command_line_page_lists_every_command_and_every_option_of_send() -> None:
    from mail_gateway.cli import main

    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    listed = _listed_commands(page[page.index("```sh"):page.index("```", page.index("```sh") + 5)])
    commands = dict(_commands(main, ()))
    assert sorted(set(commands) - {()} - listed) == []
    start = page.index("`send` takes")
    paragraph = page[start:page.index("\n\n", start)]
    options = [option for param in commands[("send",)].params for option in param.opts if option.startswith("--")]
    assert [option for option in options if f"`{option}" not in paragraph] == []


def test_a_misspelt_app_config_key_points_at_the_configuration_reference() -> None:
    app = Flask(__name__)
    app.config["MAIL_SEVRER"] = "smtp.example.com"
    with pytest.raises(ConfigurationError) as refused:
        MailGateway(app)
    named = re.findall(r"docs/[\w./-]+\.md", str(refused.value))
    assert named, str(refused.value)
    assert all((ROOT / page).is_file() for page in named), named


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"])
def test_the_relative_links_of_the_top_level_pages_lead_somewhere(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    targets = [target for target in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]
    missing = [target for target in targets if not (ROOT / target).exists()
               and target != "docs/images/inbox/list.png"]  # written by the inbox's browser tests
    assert missing == []


def test_the_readme_is_a_short_entry_page_pointing_at_the_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    linked = set(LINK.findall(readme))
    for page in ("docs/getting-started.md", "docs/install.md", "docs/configuration.md", "docs/http-api.md",
                 "docs/migrating.md", "docs/inbox.md"):
        assert page in linked, page
    assert "pip install mail-gateway" in readme and "docs/images/inbox/list.png" in readme


def test_a_link_leaving_the_docs_is_shown_as_its_path_and_a_missing_one_fails_the_build() -> None:
    from mkdocs.exceptions import PluginError

    repository = hook("repository")
    page = type("Page", (), {"file": type("File", (), {"src_uri": "scaling.md"})()})()
    config = {"docs_dir": str(ROOT / "docs")}
    shown = repository.on_page_markdown("See [the results](../benchmarks/RESULTS.md).", page=page, config=config)
    assert shown == "See the results (`benchmarks/RESULTS.md`)."
    with pytest.raises(PluginError, match="NOPE.md"):
        repository.on_page_markdown("See [gone](../benchmarks/NOPE.md).", page=page, config=config)


def test_an_included_file_keeps_its_links_working_from_the_page() -> None:
    repository = hook("repository")
    page = type("Page", (), {"file": type("File", (), {"src_uri": "contributing.md"})()})()
    text = repository.on_page_markdown("<!-- include: ../CONTRIBUTING.md -->", page=page,
                                       config={"docs_dir": str(ROOT / "docs")})
    assert text.startswith("# Contributing") and "<!-- include" not in text
