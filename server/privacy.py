"""Pseudonymisation of participants' identities (docs/architecture.md, "Privacy").

A participant's identity (the platform's user id, display name or email) is replaced by an
HMAC-SHA-256 with the territory's secret before anything reaches the store. The same person
keeps the same pseudonym within a territory (distinct-participant counts stay exact), the
pseudonym cannot be reversed without the secret, and territories cannot link each other's
participants.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from typing import Any

from .model.kinds import Kind

#: Fields dropped from every record before mapping, whatever the kind: they carry identities.
IDENTITY_INPUTS = ("author", "author_email", "voter")


def normalise_identity(identity: str) -> str:
    value = unicodedata.normalize("NFC", identity).strip()
    # Email addresses are case-insensitive in practice; user ids and names are not touched.
    return value.lower() if "@" in value and " " not in value else value


def pseudonym(secret: bytes, identity: str) -> str:
    """128-bit hex pseudonym of an identity under a territory's secret."""
    digest = hmac.new(secret, normalise_identity(identity).encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:32]


def pseudonymise(kind: Kind, data: dict[str, Any], secret: bytes) -> dict[str, Any]:
    """Replace identity inputs by pseudonyms; emails and names never leave this function."""
    for source, target in kind.identities.items():
        identity = data.get(source) or (data.get(f"{source}_email") if source == "author" else None)
        if identity:
            data[target] = pseudonym(secret, identity)
    for name in IDENTITY_INPUTS:
        data.pop(name, None)
    return data
