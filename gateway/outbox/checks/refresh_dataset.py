"""Refresh ``data/caniemail.json`` from the ``caniemail`` package on npm (caniemail.com's data, MIT): ``make
caniemail``. Never run by the tests, which read the copy shipped in the repository.

The shipped file keeps what the checks read: each feature's slug, title, category and page; one support value
per client family, reduced from the newest test of each of its platforms: ``y`` when every platform supports it,
``n`` when none does, ``a`` (partial) otherwise, ``u`` when nothing is known; each platform's newest result as
caniemail writes it (``a #1``: partial, see note 1); the notes those results cite, and the feature's general note.
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


def newest_results(platforms: dict[str, dict[str, str]]) -> dict[str, str]:
    """Each platform's newest result (``y``, ``a #1``...), the older versions' dropped."""
    return {platform: results[max(results, key=_version_key)] for platform, results in platforms.items() if results}


def family_support(platforms: dict[str, dict[str, str]]) -> str:
    """One letter for a family: its platforms' newest results (their notes, after the letter, dropped)."""
    newest = [result.split()[0] for result in newest_results(platforms).values()]
    known = {value if value in ("y", "n") else "a" for value in newest if value != "u"}
    if not known:
        return "u"
    return known.pop() if len(known) == 1 else "a"


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in version.replace("-", ".").split("."))


def cited_notes(feature: dict[str, Any], platforms: dict[str, dict[str, str]]) -> dict[str, str]:
    """The numbered notes the newest results cite (``a #1 #3``)."""
    numbers = {part[1:] for family in platforms.values() for result in family.values()
               for part in result.split()[1:] if part.startswith("#")}
    return {number: text for number, text in (feature.get("notes_by_num") or {}).items() if number in numbers}


def reduced_feature(feature: dict[str, Any]) -> dict[str, Any]:
    platforms = {family: newest_results(results) for family, results in feature["stats"].items()}
    return {"slug": feature["slug"], "title": feature["title"], "category": feature["category"],
            "url": feature["url"],
            "support": {family: family_support(results) for family, results in feature["stats"].items()},
            "platforms": platforms, "notes": cited_notes(feature, platforms), "note": feature.get("notes") or None}


def reduced(source: dict[str, Any], package_version: str) -> dict[str, Any]:
    return {
        "name": "Can I email", "version": source["last_update_date"], "licence": "MIT",
        "url": "https://www.caniemail.com/", "source": f"npm {PACKAGE}@{package_version}",
        "families": source["nicenames"]["family"], "platforms": source["nicenames"]["platform"],
        "features": [reduced_feature(feature) for feature in source["data"]],
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
