"""What the CONSUL importers share (:mod:`importers.consul`, the GraphQL API, and
:mod:`importers.consul_csv`, the CSV layouts): how an instance's records are named here, the
processes synthesised for them, and the mapping of CONSUL's values (counts, times, HTML texts,
tags to themes), so that both sources of one instance write the same records.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.errors import BadRequest, ValidationFailed

from .tabular import html_text

#: What each section of CONSUL becomes: the kind its records are named by, the process type.
SECTIONS = {"proposals": ("proposal", "citizen_initiative", "Proposals"), "debates": ("debate", "debate", "Debates")}


@dataclass(frozen=True)
class Instance:
    """One CONSUL platform: how its records are named here and where its pages are."""

    #: Prefix of every local id: the host name by default, so that the API and a CSV export of
    #: the same instance name a record alike (and two instances in one territory do not clash).
    prefix: str
    base: str | None = None
    language: str | None = None
    tz: tzinfo = UTC

    def local_id(self, kind: str, platform_id: Any) -> str:
        return f"{self.prefix}-{kind}-{platform_id}"

    def process(self, section: str) -> dict[str, Any]:
        """The process a section's records belong to (synthesised: CONSUL has none)."""
        _, type_, label = SECTIONS[section]
        data = {"id": f"{self.prefix}-{section}", "title": f"{label} · {self.prefix}", "type": type_}
        return self._common(data, f"/{section}")

    def _common(self, data: dict[str, Any], path: str | None) -> dict[str, Any]:
        if self.base and path:
            data["url"] = self.base + path
        if self.language:
            data["language"] = self.language
        return data

    def contribution(
        self, section: str, platform_id: str, fields: dict[str, Any], process: str | None = None
    ) -> dict[str, Any]:
        """A proposal or a debate as a proposal record; ``fields`` holds its mapped values."""
        kind = SECTIONS[section][0]
        data = {"id": self.local_id(kind, platform_id), "process": process or f"{self.prefix}-{section}"}
        data.update({k: v for k, v in fields.items() if v is not None and v != []})
        return self._common(data, f"/{section}/{platform_id}")

    def comment(self, platform_id: str, about: str, fields: dict[str, Any]) -> dict[str, Any]:
        data = {"id": self.local_id("comment", platform_id), "about": {"kind": "proposal", "id": about}}
        data.update({k: v for k, v in fields.items() if v is not None})
        return self._common(data, None)


def instance_for(base: str | None, prefix: str | None, language: str | None, timezone: str | None) -> Instance:
    """The Instance of a base URL (or of a prefix alone), checking the options."""
    try:
        tz = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequest(f"unknown time zone {timezone!r}: use an IANA name such as Europe/Madrid") from exc
    if prefix and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,63}", prefix):
        raise BadRequest(f"the prefix {prefix!r} is not usable in ids: letters, digits and . _ ~ - only")
    base = base.rstrip("/") if base else None
    host = urlsplit(base).hostname if base else None
    return Instance(prefix or host or "consul", base, language or None, tz)


def body_of(*parts: str | None) -> str | None:
    """Summary and description (HTML in CONSUL) as one plain-text body."""
    texts = [t for t in (html_text(p.strip()) if p else None for p in parts) if t]
    return "\n\n".join(texts) or None


def count(value: Any, pointer: str) -> int | None:
    """A count the platform reports: an integer, or a numeral (``20``, ``20.0`` as scrapers write)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer of 400 digits
        number = -1.0
    if isinstance(value, bool) or number < 0 or not number.is_integer():
        raise ValidationFailed(f"not a count: {value!r}", errors=[{"pointer": pointer, "detail": "Not a count."}])
    return int(number)


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %H", "%d/%m/%Y")


def moment(value: Any, tz: tzinfo, pointer: str) -> str | None:
    """A CONSUL time as RFC 3339 UTC. The API writes Ruby's ``2017-12-31 09:00:00 +0100`` (or
    ISO 8601); Madrid's open data ``31/12/2017 09`` (hour precision), read in ``tz``."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip().replace(" UTC", " +0000")
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValidationFailed(f"not a time: {value!r}", errors=[{"pointer": pointer, "detail": "Not a time."}])
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01 00:00 +0100 is in the year 0, which datetime has not
        raise ValidationFailed(
            f"not a time: {value!r} is out of range", errors=[{"pointer": pointer, "detail": "Out of range."}]
        ) from None
    return parsed.isoformat().replace("+00:00", "Z")


def _fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.replace("\u2019", "'")).encode("ascii", "ignore").decode()
    return " ".join(plain.lower().split())


#: Tags whose name says one theme and only one: CONSUL's default categories (``seeds.categories``
#: in its es, en and fr locales) and the same words in German. Other tags map to no theme.
_THEME_TAGS = {
    "mobility": ("movilidad", "mobility", "mobilite", "mobilitat", "verkehr"),
    "environment": ("medio ambiente", "environment", "environnement", "umwelt"),
    "culture": ("cultura", "culture", "kultur"),
    "sport": ("deportes", "sports", "sport"),
    "health": ("salud", "health", "sante", "gesundheit"),
    "economy": ("economia", "economy", "economie", "wirtschaft", "empleo", "employment", "emploi"),
    "safety": ("seguridad y emergencias", "security and emergencies", "securite et situations d'urgence", "sicherheit"),
    "social": ("derechos sociales", "social rights", "droits sociaux", "equidad", "equity", "equite"),
    "governance": ("participacion", "participation", "transparencia", "transparency", "transparence", "transparenz"),
}
THEME_OF_TAG = {name: theme for theme, names in _THEME_TAGS.items() for name in names}


def themes_of(tags: list[str]) -> list[str]:
    """The themes the tags name unambiguously, in the order of the tags, each once."""
    found = [THEME_OF_TAG.get(_fold(t)) for t in tags]
    return list(dict.fromkeys(t for t in found if t))


def slug(text: str, limit: int = 60) -> str:
    """An ASCII slug of a name, for the local id of a synthesised record."""
    out = re.sub(r"[^a-z0-9]+", "-", _fold(text)).strip("-")[:limit].strip("-")
    return out or hashlib.sha256(text.encode()).hexdigest()[:12]


def reply_to(instance: Instance, ancestry: Any, known: set[str]) -> str | None:
    """The comment this one answers: the last id of CONSUL's ``ancestry`` path (``12/45``), kept
    only when that comment was read too (a hidden parent is not published: the reply then stands
    alone on its proposal rather than pointing at nothing)."""
    parent = str(ancestry).strip().rsplit("/", 1)[-1] if ancestry else ""
    return instance.local_id("comment", parent) if parent and parent in known else None
