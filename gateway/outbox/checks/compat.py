"""The HTML compatibility report: which features a message's HTML uses that mail clients do not (fully)
support, from caniemail.com's dataset shipped in ``data/`` (``refresh_dataset`` updates it), and a score. Each
issue says where the HTML uses the feature (its lines) and which platforms of each family (Outlook on Windows,
Gmail's iOS app...) do not support it or do in part, with the notes caniemail gives for them.

The score is the mean, over the features used that the dataset knows, of the share of the client families in
``FAMILIES`` supporting each (a partial support counts half; a family whose support is unknown is left out of
that feature's share), as a whole percentage: 100 when everything used works everywhere, or nothing known is
used. The dataset has no market shares, so every family weighs the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mail_gateway.outbox.checks.usage import Usage

DATA = Path(__file__).resolve().parent / "data" / "caniemail.json"
# The families reported, most used first; the dataset lists smaller webmails too.
FAMILIES = ("apple-mail", "gmail", "outlook", "yahoo", "samsung-email", "thunderbird", "aol", "protonmail",
            "fastmail", "hey")
WEIGHT = {"y": 1.0, "a": 0.5, "n": 0.0}
SUPPORT = {"n": "unsupported", "a": "partial"}


@dataclass(frozen=True, slots=True)
class Feature:
    slug: str
    title: str
    url: str
    support: dict[str, str]  # family: y, a (partial), n or u (unknown)
    platforms: dict[str, dict[str, str]]  # family: {platform: its newest result, "a #1": partial, see note 1}
    notes: dict[str, str]  # the numbered notes the results cite
    note: str | None  # about the feature as a whole


@dataclass(frozen=True, slots=True)
class Dataset:
    about: dict[str, str]  # name, version, licence, url
    names: dict[str, str]  # family slug: its name
    platform_names: dict[str, str]  # platform slug: its name
    features: dict[str, Feature]


@cache
def dataset() -> Dataset:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    about = {key: data[key] for key in ("name", "version", "licence", "url")}
    features = {f["slug"]: Feature(f["slug"], f["title"], f["url"], f["support"], f["platforms"], f["notes"],
                                   f["note"]) for f in data["features"]}
    return Dataset(about, data["families"], data["platforms"], features)


def _share(feature: Feature) -> float | None:
    known = [WEIGHT[feature.support[f]] for f in FAMILIES if feature.support.get(f, "u") in WEIGHT]
    return sum(known) / len(known) if known else None


def platform_results(data: Dataset, feature: Feature) -> list[dict[str, Any]]:
    """The reported families' platforms that do not (fully) support ``feature``, with the notes they cite."""
    results = []
    for family in FAMILIES:
        for platform, result in feature.platforms.get(family, {}).items():
            letter, *cited = result.split()
            if letter in SUPPORT:
                results.append({"family": data.names[family], "platform": data.platform_names.get(platform, platform),
                                "support": SUPPORT[letter],
                                "notes": [feature.notes[n[1:]] for n in cited if n[1:] in feature.notes]})
    return results


def compatibility(used: Usage) -> tuple[int, dict[str, Any]]:
    """The score and the report of the features some HTML uses (``usage.used_features``; none: 100 and no
    issue)."""
    data = dataset()
    known = sorted(slug for slug in used if slug in data.features)
    issues, shares = [], []
    for slug in known:
        feature = data.features[slug]
        share = _share(feature)
        if share is not None:
            shares.append(share)
        unsupported = [data.names[f] for f in FAMILIES if feature.support.get(f) == "n"]
        partial = [data.names[f] for f in FAMILIES if feature.support.get(f) == "a"]
        if unsupported or partial:
            issues.append({"feature": feature.title, "slug": slug, "kind": used[slug].kind, "url": feature.url,
                           "unsupported_in": unsupported, "partial_in": partial, "lines": used[slug].lines,
                           "platforms": platform_results(data, feature), "note": feature.note})
    score = round(100 * sum(shares) / len(shares)) if shares else 100
    # The features unsupported somewhere first, then the partly supported: what to fix first.
    issues.sort(key=lambda issue: (-len(issue["unsupported_in"]), -len(issue["partial_in"]), issue["slug"]))
    return score, {"dataset": data.about, "features_used": len(known), "issues": issues}
