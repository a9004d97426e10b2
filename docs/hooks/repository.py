"""MkDocs hook: the repository's files as the pages see them.

- ``<!-- include: ../CONTRIBUTING.md -->`` puts a Markdown file of the repository into a page, its links made
  relative to the page (``docs/configuration.md`` becomes ``configuration.md``), so the file reads right both on
  GitHub and in the site.
- A relative link to a file of the repository outside ``docs/`` (``../benchmarks/RESULTS.md``) is not part of the
  site: it is written as the file's path, once the hook has checked that the file exists. A link to a file that
  does not exist fails the build, as a broken link between pages does.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

INCLUDE = re.compile(r"<!--\s*include:\s*(\S+)\s*-->")
LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _outside_links(text: str, page_dir: str, docs: Path, where: str) -> str:
    """Links that leave ``docs/`` become the target's path in code; a missing target fails the build."""
    root = docs.parent

    def replace(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            return match.group(0)
        inside = posixpath.normpath(posixpath.join(page_dir, target))
        if not inside.startswith("../"):
            return match.group(0)
        path = posixpath.normpath(inside[3:])
        if not (root / path).exists():
            raise PluginError(f"{where} links to {target}, which is not in the repository; fix the link")
        shown = f"`{path}`"
        return label if path in label else f"{label} ({shown})"

    return _outside_fences(text, lambda part: LINK.sub(replace, part))


def _outside_fences(text: str, change: Any) -> str:
    parts, last = [], 0
    for fence in FENCE.finditer(text):
        parts += [change(text[last:fence.start()]), fence.group(0)]
        last = fence.end()
    return "".join(parts + [change(text[last:])])


def _included(path: Path, docs: Path, page_dir: str) -> str:
    """A repository file's Markdown, its relative links rewritten to hold from the including page."""
    root = docs.parent
    file_dir = path.parent.relative_to(root).as_posix()
    page_from_root = posixpath.join(docs.relative_to(root).as_posix(), page_dir)

    def rebase(match: re.Match[str]) -> str:
        label, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            return match.group(0)
        moved = posixpath.normpath(posixpath.join(file_dir, target))
        return f"[{label}]({posixpath.relpath(moved, page_from_root)}{anchor})"

    return _outside_fences(path.read_text(encoding="utf-8"), lambda part: LINK.sub(rebase, part))


def on_page_markdown(markdown: str, page: Any, config: Any, **_: Any) -> str:
    docs = Path(config["docs_dir"])
    page_dir = posixpath.dirname(page.file.src_uri)

    def include(match: re.Match[str]) -> str:
        path = (docs / page_dir / match.group(1)).resolve()
        if not path.is_file():
            raise PluginError(f"{page.file.src_uri} includes {match.group(1)}, which does not exist")
        return _included(path, docs, page_dir)

    markdown = INCLUDE.sub(include, markdown)
    return _outside_links(markdown, page_dir, docs, page.file.src_uri)
