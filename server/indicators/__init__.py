"""Participation indicators (vocabularies/indicators.ttl, docs/indicators.md).

``recompute`` computes a territory's indicators from scratch, from its records as the JSON API
reads them: the reference the maintained values are checked against.
"""

from __future__ import annotations

from .compute import Cell, periods_of, recompute

__all__ = ["Cell", "periods_of", "recompute"]
