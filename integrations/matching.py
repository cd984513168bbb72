"""Matching our customers and catalogue to an accounting system's (pure: no ORM, no HTTP).

* **exact**: the same name once spaces and letter case are ignored (or, for items, the
  same SKU) — matched automatically;
* **suggested**: the same *name key* — accents, punctuation, "&"/"and", legal-form words
  (GmbH, Ltd, Inc, …) and word order ignored, so "Brown, Nick" suggests "Nick Brown" and
  "Müller & Söhne GmbH" suggests "Mueller and Sohne" — or a close spelling; the admin
  confirms;
* otherwise the admin picks one by hand, creates one in the accounting system, or skips.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from dataclasses import dataclass, field

LEGAL_FORMS = frozenset({
    "inc", "incorporated", "llc", "llp", "lp", "ltd", "limited", "gmbh", "mbh", "ag", "kg", "ug", "co", "corp",
    "corporation", "company", "plc", "pty", "pte", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as",
    "aps", "kft", "sro", "the",
})
GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
SIMILAR = 0.88


def exact_key(name: str) -> str:
    """Letter case and runs of spaces do not make two names different."""
    return " ".join((name or "").split()).casefold()


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def normalise(name: str) -> str:
    """``"Brown,  Nick & Co."`` → ``"brown nick and co"``."""
    text = _ascii((name or "").translate(GERMAN)).casefold().replace("&", " and ").replace("+", " and ")
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(text.split())


def name_key(name: str) -> str:
    """Order-free key without legal forms: "Brown, Nick" and "Nick Brown" share one."""
    words = [word for word in _collapse_initials(normalise(name).split()) if word not in LEGAL_FORMS and word != "and"]
    return " ".join(sorted(words))


def _collapse_initials(words: Sequence[str]) -> list[str]:
    out: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1 and word.isalpha():
            run += word
            continue
        if run:
            out.append(run)
            run = ""
        out.append(word)
    if run:
        out.append(run)
    return out


@dataclass(frozen=True)
class Candidate:
    remote_id: str
    name: str
    code: str = ""


@dataclass
class Proposal:
    """What the wizard proposes for one local customer / item."""

    local_key: str  # "customer:12", "product:3", "rate_item:4"
    local_name: str
    status: str  # "mapped" (remembered), "exact", "suggested", "none"
    remote_id: str = ""  # proposed choice ("" = nothing yet)
    suggestions: list[Candidate] = field(default_factory=list)


def propose(locals_: Iterable[tuple[str, str, str]], remotes: Sequence[Candidate], *,
            mapped: Mapping[str, str] | None = None) -> list[Proposal]:
    """``locals_``: (local key, name, code such as a SKU or ""). ``mapped``: remembered local key → remote id."""
    mapped = mapped or {}
    remote_ids = {remote.remote_id for remote in remotes}
    by_exact: dict[str, list[Candidate]] = {}
    by_key: dict[str, list[Candidate]] = {}
    by_code: dict[str, list[Candidate]] = {}
    for remote in remotes:
        by_exact.setdefault(exact_key(remote.name), []).append(remote)
        by_key.setdefault(name_key(remote.name), []).append(remote)
        if remote.code:
            by_code.setdefault(exact_key(remote.code), []).append(remote)
    normalised = [(normalise(remote.name), remote) for remote in remotes]
    proposals = []
    for local_key, name, code in locals_:
        remembered = mapped.get(local_key)
        if remembered and remembered in remote_ids:
            proposals.append(Proposal(local_key, name, "mapped", remembered))
            continue
        exact = by_exact.get(exact_key(name)) or (by_code.get(exact_key(code)) if code else None)
        if exact and len(exact) == 1:
            proposals.append(Proposal(local_key, name, "exact", exact[0].remote_id))
            continue
        suggestions = list(exact or []) + [c for c in by_key.get(name_key(name), []) if c not in (exact or [])]
        if not suggestions:
            mine = normalise(name)
            scored = sorted(((difflib.SequenceMatcher(None, mine, other).ratio(), remote) for other, remote in normalised),
                            key=lambda pair: -pair[0])
            suggestions = [remote for score, remote in scored[:3] if score >= SIMILAR]
        if suggestions:
            proposals.append(Proposal(local_key, name, "suggested", suggestions[0].remote_id, suggestions[:5]))
        else:
            proposals.append(Proposal(local_key, name, "none"))
    return proposals


def name_twins(names: Mapping[Any, str], remotes: Sequence[Candidate]) -> dict[Any, list[Candidate]]:
    """For each local name (keyed as the caller likes), the remote records with the same name key.

    Those whose name is the same ignoring only case and spacing come first. A local name
    with no twin is left out. Used before anything is created remotely: a twin means the
    customer is probably there already.
    """
    by_key: dict[str, list[Candidate]] = {}
    for remote in remotes:
        by_key.setdefault(name_key(remote.name), []).append(remote)
    twins = {}
    for local, name in names.items():
        found = by_key.get(name_key(name), [])
        if found:
            twins[local] = sorted(found, key=lambda remote: exact_key(remote.name) != exact_key(name))
    return twins
