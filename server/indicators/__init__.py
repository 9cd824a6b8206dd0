"""Participation indicators (vocabularies/indicators.ttl, docs/indicators.md).

``recompute`` computes a territory's indicators from scratch, from its records as the JSON API
reads them: the reference the values every write maintains (server/records/indicators.py) are
checked against, by ``verify``.
"""

from __future__ import annotations

from ..records.contributions import Cell, periods_of
from .compute import recompute, sums
from .verify import Difference, Verdict, verify

__all__ = ["Cell", "Difference", "Verdict", "periods_of", "recompute", "sums", "verify"]
