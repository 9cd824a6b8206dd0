"""The indicators of one territory computed from scratch, as their definitions say
(vocabularies/indicators.ttl): every record of the counted kinds read once, through the same read
path as the JSON API, and what each counts for added up (server/records/write_indicators.py:
``recount``). A territory replicated from a peer is computed from what it publishes: individual
votes are never published, so there its votes count at their proposal's creation (the published
vote counts) and voters are not among its participants.

A cell is (indicator code, period, process, district): a period is a year (``2024``) or a month
(``2024-03``), a process or a district an id, or None for all of them. The shares have no cell
until receivability decisions exist, the days to a decision none until proposals are answered.
"""

from __future__ import annotations

from decimal import Decimal

from ..records import Records
from ..records.contributions import Cell, Sums


def recompute(records: Records, territory: str) -> dict[Cell, int | Decimal]:
    """Every cell of the territory's indicators that has a value: the sum of every live record's
    contributions (server/records/contributions.py)."""
    return sums(records, territory).published()


def sums(records: Records, territory: str) -> Sums:
    """Every live record's contributions, added up."""
    return records.recount_indicators(territory)
