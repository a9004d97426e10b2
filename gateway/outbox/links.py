"""What a test follows in a kept message: its links (every ``href`` and ``src`` of its HTML, and the web addresses
of its text), its one-time codes, and whether its HTML would load remote content.

A one-time code is a number of 4 to 8 digits, or a token of 6 to 8 letters and digits holding at least one
digit, written within 40 characters of a word such as code, OTP, verification, passcode, PIN or token on the same
line of the subject or the text (the HTML's text where there is no text part).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from mail_gateway.backends.kept import visible_text
from mail_gateway.mail.reader import MessageReader

SOURCES = {"img", "source", "script", "iframe", "video", "audio", "embed", "input", "track", "frame"}
REFERENCES = {"a", "area", "link"}
WINDOW = 40
_KEYWORD = re.compile(r"\b(?:code|codes|otp|verification|verify|passcode|pin|token|one[- ]time|password)\b",
                      re.IGNORECASE)
_CANDIDATE = re.compile(r"\b(?:[0-9]{4,8}|(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{6,8})\b")
_TEXT_URL = re.compile(r"https?://[^\s<>\"'()\[\]]+", re.IGNORECASE)
# Spaces only after a quote: with "\s*['"]?\s*" both runs could take the same spaces, tried in every split.
_REMOTE = re.compile(r"""url\(\s*(?:['"]\s*)?https?:|@import\s+['"]?https?:""", re.IGNORECASE)
_DATA_URI = re.compile(r"""data:[^'"\s>]{1000,}""")
# The HTML is fed a chunk at a time, and reading stops when the parser holds more than STUCK characters it
# could not read yet: one tag, comment or attribute that long has no end, and html.parser (before Python 3.11.13,
# CVE-2025-6069) rescans such a rest from each '<' to the end of the input, quadratic in it.
CHUNK, STUCK = 4096, 16_384
_REMOTE_ATTRIBUTES = {"src", "background", "poster", "srcset"}


@dataclass
class Link:
    url: str
    text: str
    kind: str  # "href" | "src"


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self.remote = False
        self._open: Link | None = None
        # The open link's text, in the pieces the parser hands over, joined once when it ends: adding each to the
        # text so far copied it again, and 8 MB of short pieces within one <a> took 48 s of CPU to view.
        self._pieces: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in REFERENCES and values.get("href", "").strip():
            link = Link(values["href"].strip(), "", "href")
            self.links.append(link)
            self.finish_text()
            self._open = link if tag == "a" else None
            self.remote |= tag == "link" and _is_remote(link.url)
        elif tag in SOURCES and values.get("src", "").strip():
            self.links.append(Link(values["src"].strip(), values.get("alt", "").strip(), "src"))
        self.remote |= any(_is_remote(values.get(name, "")) for name in _REMOTE_ATTRIBUTES)
        self.remote |= bool(_REMOTE.search(values.get("style", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.finish_text(tidy=True)

    def finish_text(self, tidy: bool = False) -> None:
        """Gives the open link its text (its spaces collapsed when its </a> ends it) and closes it."""
        if self._open is not None:
            text = "".join(self._pieces)
            self._open.text = " ".join(text.split()) if tidy else text
        self._open, self._pieces = None, []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._pieces.append(data)
        elif self.lasttag == "style":
            self.remote |= bool(_REMOTE.search(data))


def _is_remote(url: str) -> bool:
    return bool(re.match(r"\s*(?:https?:)?//", url, re.IGNORECASE))


@functools.lru_cache(maxsize=4)  # a message's detail asks for its links and then for its remote content
def html_links(html: str) -> tuple[list[Link], bool]:
    """The links of ``html`` in document order, and whether it references remote images, styles or fonts; up to
    the point where something in it has no end (see ``STUCK``). An inline image's data is not a link to follow."""
    parser = _LinkParser()
    html = _DATA_URI.sub("data:…", html)
    for start in range(0, len(html), CHUNK):
        parser.feed(html[start:start + CHUNK])
        if len(parser.rawdata) > STUCK:
            break
    else:
        parser.close()
    parser.finish_text()
    return parser.links, parser.remote


def links(reader: MessageReader) -> list[dict[str, str]]:
    """Every link of the message: its HTML's, then its text's web addresses the HTML does not have."""
    found = list(html_links(reader.html)[0]) if reader.html is not None else []  # the cached list stays whole
    seen = {link.url for link in found}
    for url in _TEXT_URL.findall(reader.text or ""):
        url = url.rstrip(".,;:!?")
        if url not in seen:
            seen.add(url)
            found.append(Link(url, "", "href"))
    return [{"url": link.url, "text": link.text, "kind": link.kind} for link in found]


def remote_content(reader: MessageReader) -> bool:
    return reader.html is not None and html_links(reader.html)[1]


def codes(reader: MessageReader) -> list[str]:
    """The one-time codes of the message (the rule is in this module's docstring), in the order written."""
    # A dict keeps them once each in that order: a list looked through for each candidate made a text of 20,000
    # codes 20 s of CPU to view.
    found: dict[str, None] = {}
    for line in [reader.subject, *visible_lines(reader)]:
        for keyword in _KEYWORD.finditer(line):
            around = line[max(keyword.start() - WINDOW, 0):keyword.end() + WINDOW]
            found.update(dict.fromkeys(_CANDIDATE.findall(around)))
    return list(found)


def visible_lines(reader: MessageReader) -> list[str]:
    if reader.text is not None:
        return reader.text.splitlines()
    return [visible_text(reader)]
