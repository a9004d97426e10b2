"""The names caniemail.com gives what HTML uses (``html-img``, ``css-display-flex``, ``css-at-media``): of an
element and its attributes, of the CSS properties, values, at-rules and pseudo-classes of inline styles and
``<style>`` blocks (parsed with tinycss2, so comments, strings and nested blocks are read as a browser reads
them), and of images' formats.

Only names are produced here; ``usage`` walks a message's HTML and ``compat`` keeps the names the dataset knows
and looks up their support.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import tinycss2

Kind = Literal["element", "css", "attribute"]

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
LISTS = {"ul", "ol", "li", "dl", "dt", "dd"}
SEMANTICS = {"article", "aside", "details", "figcaption", "figure", "footer", "header", "main", "mark", "nav",
             "section", "summary", "time"}
ATTRIBUTES = {"align", "background", "cellpadding", "cellspacing", "dir", "height", "width", "hidden", "lang",
              "srcset", "target", "valign", "role", "required", "popover", "aria-describedby", "aria-hidden",
              "aria-label", "aria-labelledby", "aria-live"}
# Properties the dataset covers under their shorthand's page (margin-top: css-margin).
SIDES = re.compile(r"^(margin|padding|border)-(top|right|bottom|left)(-.*)?$")
RADIUS = re.compile(r"^border-(top|bottom|start|end)-(left|right|start|end)-radius$")
POSITIONS = {"left", "right", "top", "bottom"}
FUNCTIONS = {"linear-gradient": "css-linear-gradient", "radial-gradient": "css-radial-gradient",
             "conic-gradient": "css-conic-gradient", "rgb": "css-rgb", "rgba": "css-rgba", "calc": "css-unit-calc",
             "var": "css-variables", "clamp": "css-function-clamp", "min": "css-function-min",
             "max": "css-function-max", "light-dark": "css-function-light-dark", "lch": "css-modern-color",
             "oklch": "css-modern-color", "lab": "css-modern-color", "oklab": "css-modern-color"}
UNITS = {"px", "em", "rem", "ex", "ch", "vh", "vw", "vmin", "vmax", "cm", "mm", "in", "pt", "pc"}
IMAGE_FORMATS = {"jpg": "jpg", "jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp", "svg": "svg",
                 "avif": "avif", "bmp": "bmp", "ico": "ico", "tif": "tiff", "tiff": "tiff", "heic": "heif",
                 "heif": "heif", "apng": "apng"}
MEDIA_FEATURES = ("prefers-color-scheme", "prefers-reduced-motion", "orientation", "hover", "device-pixel-ratio")
# Functions within functions, @media within @media: deeper CSS is not read, so that a hostile message cannot exhaust
# the stack (real mail nests a few levels).
MAX_DEPTH = 32
# Not a slug of the dataset, so never a feature: it tells the report that the CSS was not read to its end.
TOO_DEEP = "css-nested-too-deep"


def element_features(tag: str, attributes: dict[str, str]) -> Iterable[tuple[str, Kind]]:
    if tag in HEADINGS:
        yield "html-h1-h6", "element"
    elif tag in LISTS:
        yield "html-lists", "element"
    elif tag in SEMANTICS:
        yield "html-semantics", "element"
    elif tag == "input":
        yield f"html-input-{attributes.get('type', 'text').lower()}", "element"
    elif tag == "button":
        yield f"html-button-{attributes.get('type', 'submit').lower()}", "element"
    elif tag in ("s", "strike"):
        yield "html-strike", "element"
    elif tag == "map":
        yield "html-image-maps", "element"
    elif tag == "meta" and attributes.get("name", "").lower() == "color-scheme":
        yield "html-meta-color-scheme", "element"
    else:
        yield f"html-{tag}", "element"


def attribute_features(tag: str, attributes: dict[str, str]) -> Iterable[tuple[str, Kind]]:
    for name in attributes:
        if name in ATTRIBUTES:
            yield f"html-{name}", "attribute"
        elif name == "loading":
            yield "html-loading-attribute", "attribute"
    href = attributes.get("href", "").strip().lower()
    if tag == "a" and href.startswith("#"):
        yield "html-anchor-links", "attribute"
    elif tag == "a" and href.startswith("mailto:"):
        yield "html-mailto-links", "attribute"
    if tag == "img":
        yield from image_features(attributes.get("src", ""))


def image_features(src: str) -> Iterable[tuple[str, Kind]]:
    src = src.strip().lower()
    if src.startswith("data:"):
        yield "image-base64", "attribute"
        found = re.match(r"data:image/([a-z+.-]+)", src)
        extension = found.group(1).split("+")[0] if found else ""
    else:
        extension = src.split("?")[0].split("#")[0].rsplit(".", 1)[-1] if "." in src else ""
    if extension in IMAGE_FORMATS:
        yield f"image-{IMAGE_FORMATS[extension]}", "attribute"


def property_features(name: str) -> Iterable[str]:
    sides = SIDES.match(name)
    if sides:
        yield f"css-{sides.group(1)}"
    elif RADIUS.match(name):
        yield "css-border-radius"
    elif name in POSITIONS:
        yield "css-left-right-top-bottom"
    elif name.startswith("--"):
        yield "css-variables"
    else:
        yield f"css-{name}"


def value_features(name: str, tokens: Iterable[tinycss2.ast.Node], depth: int = 0) -> Iterable[str]:
    for token in tokens:
        if token.type == "function":
            if token.lower_name in FUNCTIONS:
                yield FUNCTIONS[token.lower_name]
            yield from value_features(name, token.arguments, depth + 1) if depth < MAX_DEPTH else (TOO_DEEP,)
        elif token.type == "dimension" and token.lower_unit in UNITS:
            yield f"css-unit-{token.lower_unit}"
        elif token.type == "percentage":
            yield "css-unit-percent"
        elif token.type == "ident" and name == "display" and token.lower_value in ("flex", "grid", "none"):
            yield f"css-display-{token.lower_value}"
        elif token.type == "ident" and token.lower_value == "initial":
            yield "css-unit-initial"


def declaration_features(declarations: Iterable[tinycss2.ast.Node]) -> Iterable[str]:
    for node in declarations:
        if node.type == "declaration":
            yield from property_features(node.lower_name)
            yield from value_features(node.lower_name, node.value)
            if node.important:
                yield "css-important"


def selector_features(prelude: Iterable[tinycss2.ast.Node]) -> Iterable[str]:
    tokens = list(prelude)
    for index, token in enumerate(tokens):
        if token.type in ("ident", "function") and index > 0 and tokens[index - 1] == ":":
            colons = "element" if index > 1 and tokens[index - 2] == ":" else "class"
            name = token.lower_value if token.type == "ident" else token.lower_name
            yield f"css-pseudo-{colons}-{name}"
        elif token.type == "[] block":
            yield "css-selector-attribute"


def media_features(prelude: Iterable[tinycss2.ast.Node], depth: int = 0) -> Iterable[str]:
    """The media features an at-rule's prelude names, within its parentheses however they nest."""
    for token in prelude:
        if token.type == "ident":
            yield from (f"css-at-media-{feature}" for feature in MEDIA_FEATURES if feature in token.lower_value)
        elif token.type in ("() block", "function"):
            nested = token.arguments if token.type == "function" else token.content
            yield from media_features(nested, depth + 1) if depth < MAX_DEPTH else (TOO_DEEP,)


def stylesheet_features(nodes: Iterable[tinycss2.ast.Node], depth: int = 0) -> Iterable[str]:
    for node in nodes:
        if node.type == "qualified-rule":
            yield from selector_features(node.prelude)
            yield from declaration_features(tinycss2.parse_blocks_contents(node.content, skip_comments=True))
        elif node.type == "at-rule":
            yield f"css-at-{node.lower_at_keyword}"
            yield from media_features(node.prelude)
            if node.content is not None and node.lower_at_keyword in ("media", "supports") and depth >= MAX_DEPTH:
                yield TOO_DEEP
            elif node.content is not None and node.lower_at_keyword in ("media", "supports"):
                yield from stylesheet_features(tinycss2.parse_rule_list(node.content, skip_comments=True,
                                                                        skip_whitespace=True), depth + 1)
            elif node.content is not None:
                yield from declaration_features(tinycss2.parse_blocks_contents(node.content, skip_comments=True))
