"""Run Flask-Mail's and flask-mailman's own test suites against ``MailGateway`` (``make compat``).

Their test suites are not in their sdists, so this takes checkouts of their repositories at the tags of the
releases the drop-in follows (flask-mailman 1.1.1, Flask-Mail 0.10.0)::

    make compat COMPAT_ARGS="--flask-mailman ../flask-mailman --flask-mail ../flask-mail"

Each checkout is copied to a temporary directory, the one line that builds the extension (``from flask_mail import
Mail`` / ``from flask_mailman import Mail``) is changed to ``from mail_gateway import MailGateway as Mail``, and
pytest runs their tests otherwise unchanged. Nothing of theirs is kept in this repository. Prints each suite's
summary: the whole suite, and for flask-mailman also the three modules the drop-in is held to.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Suite:
    name: str
    setup_file: str  # the file, under tests/, that builds the extension
    original_import: str
    modules: tuple[str, ...]  # the modules quoted on their own


SUITES = (
    Suite("flask-mailman", "__init__.py", "from flask_mailman import Mail",
          ("test_mail.py", "test_backend.py", "test_connection.py")),
    Suite("flask-mail", "conftest.py", "from flask_mail import Mail", ()),
)
REPLACEMENT = "from mail_gateway import MailGateway as Mail"


def prepared(suite: Suite, checkout: Path, into: Path) -> Path:
    source = into / checkout.name
    shutil.copytree(checkout, source, ignore=shutil.ignore_patterns(".git", ".tox", "__pycache__"))
    setup = source / "tests" / suite.setup_file
    text = setup.read_text()
    if suite.original_import not in text:
        raise SystemExit(f"{suite.name}: tests/{suite.setup_file} does not say {suite.original_import!r}")
    setup.write_text(text.replace(suite.original_import, REPLACEMENT))
    return source


def run(source: Path, *targets: str) -> str:
    """pytest's summary line for ``targets`` (tests/ modules), run in the unpacked source."""
    paths = [f"tests/{t}" for t in targets] or ["tests"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(source), *paths], cwd=source, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return lines[-1].strip("= ") if lines else f"no summary (exit {done.returncode})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for suite in SUITES:
        parser.add_argument(f"--{suite.name}", type=Path, metavar="CHECKOUT", help=f"{suite.name}'s source")
    args = parser.parse_args()
    given = [(suite, getattr(args, suite.name.replace("-", "_"))) for suite in SUITES]
    if not any(checkout for _, checkout in given):
        parser.error("name at least one checkout (see the description above)")
    for suite, checkout in given:
        if checkout is None:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            source = prepared(suite, checkout.resolve(), Path(scratch))
            print(f"{suite.name}, whole suite: {run(source)}")
            if suite.modules:
                print(f"{suite.name}, {', '.join(suite.modules)}: {run(source, *suite.modules)}")


if __name__ == "__main__":
    main()
