"""The package's shape: one installed namespace, floors that only import downwards, no circles, small modules,
and a pytest plugin that loads nothing heavy in the many test runs that never use it."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"gateway": "mail_gateway", "backends": "mail_gateway.backends", "settings": "mail_gateway.settings"}
# Each floor imports only from floors below it (or its own).
# The lowest floor: the one hierarchy of errors, the one way background threads start and stop, and the one
# way a feature whose extra is not installed stops start-up.
# Above the features (store, queue, ingress): what puts them together, the runtime that owns them, then what
# serves an app with it (the HTTP API, the outbox page, the Flask extension), then the app factory, the commands
# and the testing plugin.
FLOORS = {"mail_gateway.errors": 0, "mail_gateway.lifecycle": 0, "mail_gateway.extras": 0, "mail_gateway.settings": 1,
          "mail_gateway.mail": 2, "mail_gateway.backends": 3, "mail_gateway.sending": 4, "mail_gateway.assembly": 6,
          "mail_gateway.runtime": 6, "mail_gateway.http": 7, "mail_gateway.outbox": 7, "mail_gateway.extension": 7,
          "mail_gateway.app": 8, "mail_gateway.cli": 8, "mail_gateway.testing": 8}
FEATURES = 5
# The compatibility with Flask-Mail and flask-mailman (their objects, smtplib-compatible errors, flask-mailman's
# backend names and classes) lives in the extension, above everything it adapts.
COMPAT = "mail_gateway.extension"
COMPAT_LIBRARIES = {"flask_mail", "flask_mailman"}
# The parts checked as wholes: a sub-package, or a module of the package's top level.
UNITS = ("http", "outbox", "queue", "store", "sending", "mail", "backends", "settings", "extension", "ingress", "cli",
         "testing", "templating", "suppression", "runtime", "assembly", "app", "errors", "lifecycle")


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def floor(module: str) -> int:
    for prefix, level in FLOORS.items():
        if module == prefix or module.startswith(prefix + "."):
            return level
    return FEATURES


def top_level_imports(path: Path) -> set[str]:
    """What a module imports when it is loaded: not under ``if TYPE_CHECKING:`` and not inside functions."""
    imported = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, (ast.Import, ast.ImportFrom, ast.Try)) else ():
            if isinstance(sub, ast.Import):
                imported |= {alias.name for alias in sub.names}
            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                imported.add(sub.module)
                imported |= {f"{sub.module}.{alias.name}" for alias in sub.names}
    return imported


def project_imports(path: Path, known: dict[str, Path]) -> set[str]:
    return {name for name in top_level_imports(path) if name in known}


def test_the_distribution_installs_one_package_and_lists_every_sub_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(config["packages"])
    assert {p.split(".")[0] for p in packages} == {"mail_gateway"}
    on_disk = {name for name, path in modules().items() if path.name == "__init__.py"}
    # Folders of data files are listed as packages too, each with its files named in package-data.
    data_folders = set(config["package-data"])
    assert packages == on_disk | data_folders
    assert not data_folders & on_disk
    assert config["package-dir"] == {"mail_gateway": "gateway", "mail_gateway.backends": "backends",
                                     "mail_gateway.settings": "settings"}


def test_no_module_imports_the_folders_by_their_generic_names() -> None:
    for name, path in modules().items():
        generic = {i for i in top_level_imports(path) if i.split(".")[0] in ("gateway", "backends", "settings")}
        assert not generic, f"{name} imports {generic}"


def test_floors_only_import_downwards() -> None:
    known = modules()
    for name, path in known.items():
        for imported in project_imports(path, known):
            assert floor(imported) <= floor(name), f"{name} (floor {floor(name)}) imports {imported} " \
                                                   f"(floor {floor(imported)})"


def test_no_module_imports_itself_round_a_circle() -> None:
    known = modules()
    graph = {name: project_imports(path, known) - {name} for name, path in known.items()}
    # A package imports its own modules when it re-exports them; that is not a circle between modules.
    graph = {name: {i for i in edges if not name.startswith(i + ".")} for name, edges in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def unit(module: str) -> str:
    part = module.split(".")[1] if "." in module else ""
    return part if part in UNITS else module


def unit_imports() -> dict[str, set[str]]:
    """Which units each unit imports when loaded (the package's lazy exports load nothing at import)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        graph.setdefault(unit(name), set()).update(unit(i) for i in project_imports(path, known))
    return {name: edges - {name} for name, edges in graph.items()}


def test_no_sub_package_imports_itself_round_a_circle() -> None:
    graph = unit_imports()

    def reaches(start: str, goal: str) -> list[str] | None:
        trail, seen = [start], set()
        stack = [(start, trail)]
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == goal:
                    return [*trail, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return None

    for name in UNITS:
        circle = reaches(name, name)
        assert circle is None, "import circle between sub-packages: " + " -> ".join(circle or [])


def every_import(path: Path) -> set[str]:
    """Everything a module may ever import: also inside functions and under ``if TYPE_CHECKING:``."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return imported


def in_compat(name: str) -> bool:
    return name == COMPAT or name.startswith(COMPAT + ".")


def compat_imports(path: Path) -> set[str]:
    return {name for name in every_import(path) if name.split(".")[0] in COMPAT_LIBRARIES or in_compat(name)}


def test_only_the_app_factory_the_commands_and_the_testing_plugin_import_the_extension() -> None:
    importers = {name for name, edges in unit_imports().items() if "extension" in edges}
    # The features read an app's runtime through mail_gateway.runtime, so the extension stays a leaf.
    assert importers <= {"app", "cli", "testing"}, importers
    # Also where it is imported late (inside a function): the compatibility package is a leaf however it loads.
    # The package's public names (mail_gateway's Mail, Message, ...) are looked up on first use, by name.
    later = {unit(name) for name, path in modules().items()
             if name != "mail_gateway" and any(map(in_compat, every_import(path)))}
    assert later - {"extension"} <= {"app", "cli", "testing"}, later


def test_errors_settings_and_backends_know_nothing_of_flask_mail_or_flask_mailman() -> None:
    # Their compatibility (smtplib-compatible errors, BadHeaderError, flask-mailman's backend names and classes)
    # is the extension's: the lower floors work without it, and it adds itself through their registration.
    for name, path in modules().items():
        if unit(name) in ("errors", "settings", "backends"):
            assert not compat_imports(path), f"{name} imports {compat_imports(path)}"


def test_the_lower_floors_work_without_the_compatibility_package() -> None:
    code = ("import smtplib, sys\nimport mail_gateway.errors as errors, mail_gateway.backends.registry\n"
            "from mail_gateway.settings import GatewaySettings\n"
            "kinds = (smtplib.SMTPException, AssertionError)\n"
            "both = [n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, kinds)]\n"
            "both += [n for n in ('BadHeaderError', 'FlaskMailBadHeaderError') if hasattr(errors, n)]\n"
            "plain = GatewaySettings(_env_file=None, mail_backend='locmem').backend_name\n"
            "import mail_gateway.extension.backend_names\n"
            "mapped = GatewaySettings(_env_file=None, mail_backend='locmem').backend_name\n"
            "print(both, plain, mapped, 'flask' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT / "tests")
    # The gateway's own errors are plain; flask-mailman's names mean something once the extension's are loaded,
    # which needs no Flask (the commands load them).
    assert done.stdout.split() == ["[]", "locmem", "memory", "False"]


def test_backends_import_no_feature() -> None:
    assert unit_imports()["backends"] <= {"errors", "lifecycle", "settings", "mail"}


def test_the_mail_floor_and_below_need_no_flask() -> None:
    code = ("import sys\nimport mail_gateway.mail.compose, mail_gateway.mail.rendering, mail_gateway.settings\n"
            "heavy = sorted(m for m in ('flask', 'flask_mailman', 'werkzeug') if m in sys.modules)\n"
            "print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT / "tests")
    assert done.stdout.strip() == ""


def test_the_pytest_plugin_loads_nothing_of_the_gateway() -> None:
    code = ("import sys\nimport mail_gateway.testing.pytest_plugin\n"
            "print(sorted(m for m in sys.modules if m.startswith(('mail_gateway.', 'flask', 'pydantic'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT / "tests")
    assert done.stdout.strip() == "['mail_gateway.testing', 'mail_gateway.testing.pytest_plugin']"


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_and_functions_stay_small(name: str) -> None:
    path = modules()[name]
    lines = path.read_text().count("\n")
    assert lines <= 220, f"{name} has {lines} lines; split it by job"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            assert length <= 50, f"{name}.{node.name} has {length} lines"
