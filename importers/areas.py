"""What the importers of districts and of their statistics share (``boundaries``, ``population``,
``table``): the code lists a district's code may come from and what their codes look like,
property templates, source ids, and reading a whole source while hashing it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from pathlib import PurePath
from typing import IO, Any

from server.errors import MalformedBody
from server.urls import LOCAL_ID_RE
from vocabularies import concept_codes

#: The code lists a district's id may come from (the ``cf:code-lists`` scheme).
CODE_LISTS: tuple[str, ...] = tuple(concept_codes("code-lists"))
#: The levels of districts (the ``cf:district-levels`` scheme), coarsest first.
LEVELS: tuple[str, ...] = tuple(concept_codes("district-levels"))
#: What a code of each list looks like (LAU and local codes: any identifier).
CODE_PATTERNS = {
    "insee-cog": re.compile(r"(?:[0-9]{5}|2[AB][0-9]{3})"),
    "iris": re.compile(r"(?:[0-9]{5}|2[AB][0-9]{3})[0-9]{4}"),
    "nuts": re.compile(r"[A-Z]{2}[A-Z0-9]{0,3}"),
}

_FIELD = re.compile(r"\{([^{}]*)\}")


def code_text(value: Any) -> str | None:
    """A code as text: numbers as their digits (``75109``, not ``75109.0``); None when empty."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def code_problem(code: str, code_list: str | None) -> str | None:
    """Why ``code`` cannot be the id of a district of ``code_list``, or None."""
    if not LOCAL_ID_RE.fullmatch(code):
        return f"{code!r} is not an identifier (letters, digits and . _ ~ -, at most 128)"
    pattern = CODE_PATTERNS.get(code_list or "")
    if pattern is not None and not pattern.fullmatch(code):
        return f"{code!r} is not a code of the {code_list} code list"
    return None


def render(spec: str, properties: Mapping[str, Any]) -> str | None:
    """A property's value (``spec`` names it), a template filled from the properties
    (``6938{numero_arrondissement}``), or a constant (``=75056``); None when a property it needs
    is missing or empty. Only ``{name}`` fields: no format specs or attribute access, which
    templates from a request must not reach."""
    if spec.startswith("="):
        return code_text(spec[1:])
    if "{" not in spec:
        return code_text(properties.get(spec))
    missing = False

    def fill(m: re.Match[str]) -> str:
        nonlocal missing
        value = code_text(properties.get(m.group(1)))
        if value is None:
            missing = True
            return ""
        return value

    out = _FIELD.sub(fill, spec).strip()
    return None if missing or not out else out


def template_fields(spec: str) -> list[str]:
    """The properties a value spec reads."""
    if spec.startswith("="):
        return []
    return _FIELD.findall(spec) if "{" in spec else [spec]


def choose(option: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    """An option's value if it is one of ``allowed`` (MalformedBody naming them otherwise)."""
    if value is not None and value not in allowed:
        raise MalformedBody(f"option {option}: {value!r} is not one of {', '.join(allowed)}")
    return value


def source_id(prefix: str, name: str) -> str:
    """A slug naming the source (its graph, its provenance): the prefix and the file's stem."""
    ascii_text = unicodedata.normalize("NFKD", PurePath(name).stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9._~-]+", "-", ascii_text).strip("-._~").lower()[:100]
    return f"{prefix}-{stem}" if stem and stem != prefix else prefix


def read_all(data: bytes | IO[bytes]) -> tuple[bytes, str]:
    """The whole source and its SHA-256 (hex)."""
    raw = data if isinstance(data, bytes) else data.read()
    return raw, hashlib.sha256(raw).hexdigest()
