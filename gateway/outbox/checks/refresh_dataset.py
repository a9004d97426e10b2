"""Refresh ``data/caniemail.json`` from the ``caniemail`` package on npm (caniemail.com's data, MIT): ``make
caniemail``. Never run by the tests, which read the copy shipped in the repository.

The shipped file keeps what the checks read: each feature's slug, title, category and page, and one support
value per client family, reduced from the newest test of each of its platforms: ``y`` when every platform
supports it, ``n`` when none does, ``a`` (partial) otherwise, ``u`` when nothing is known.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
PACKAGE = "caniemail"


def family_support(platforms: dict[str, dict[str, str]]) -> str:
    """One letter for a family: its platforms' newest results (their notes, after the letter, dropped)."""
    newest = [results[max(results, key=_version_key)].split()[0] for results in platforms.values() if results]
    known = {value if value in ("y", "n") else "a" for value in newest if value != "u"}
    if not known:
        return "u"
    return known.pop() if len(known) == 1 else "a"


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in version.replace("-", ".").split("."))


def reduced(source: dict[str, Any], package_version: str) -> dict[str, Any]:
    return {
        "name": "Can I email", "version": source["last_update_date"], "licence": "MIT",
        "url": "https://www.caniemail.com/", "source": f"npm {PACKAGE}@{package_version}",
        "families": source["nicenames"]["family"],
        "features": [{"slug": f["slug"], "title": f["title"], "category": f["category"], "url": f["url"],
                      "support": {family: family_support(platforms) for family, platforms in f["stats"].items()}}
                     for f in source["data"]],
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@latest"], cwd=folder, check=True, capture_output=True)
        [tarball] = Path(folder).glob("*.tgz")
        with tarfile.open(tarball) as archive:
            archive.extractall(folder, filter="data")
        package = Path(folder) / "package"
        version = json.loads((package / "package.json").read_text())["version"]
        source = json.loads((package / "data" / "caniemail.json").read_text(encoding="utf-8"))
        (DATA / "caniemail.json").write_text(json.dumps(reduced(source, version), separators=(",", ":"),
                                                        ensure_ascii=False) + "\n", encoding="utf-8")
        shutil.copyfile(package / "LICENSE", DATA / "LICENSE.caniemail-npm")
    print(f"data/caniemail.json from {PACKAGE}@{version}", file=sys.stderr)


if __name__ == "__main__":
    main()
