"""The four reference SPARQL queries, the same text on every backend (standard SPARQL 1.1)."""

from __future__ import annotations

from vocabularies import CF, DCT, SDO

PREFIXES = f"PREFIX cf: <{CF['']}> PREFIX dct: <{DCT['']}> PREFIX schema: <{SDO['']}>\n"


def lookup(graph: str, iri: str) -> str:
    """Look up one resource: every triple of one proposal."""
    return f"SELECT ?p ?o WHERE {{ GRAPH <{graph}> {{ <{iri}> ?p ?o }} }}"


def votes_per_theme() -> str:
    """Count votes per theme per territory across all graphs (individual votes joined to proposals)."""
    return PREFIXES + (
        "SELECT ?territory ?theme (COUNT(?vote) AS ?votes) WHERE { "
        "GRAPH ?vg { ?vote a cf:Vote ; schema:object ?proposal } "
        "GRAPH ?pg { ?proposal a cf:Proposal ; cf:territory ?territory ; dct:subject ?theme } "
        "} GROUP BY ?territory ?theme"
    )


def top_proposals(graph: str) -> str:
    """Top-10 proposals by votes in one territory (the maintained counters)."""
    return PREFIXES + (
        f"SELECT ?proposal ?votes WHERE {{ GRAPH <{graph}> {{ ?proposal a cf:Proposal ; "
        "schema:interactionStatistic ?counter . ?counter schema:interactionType schema:VoteAction ; "
        "schema:userInteractionCount ?votes } } ORDER BY DESC(?votes) LIMIT 10"
    )


def title_search(word: str) -> str:
    """Case-insensitive title search, LIMIT 20."""
    return PREFIXES + (
        "SELECT ?proposal ?title WHERE { GRAPH ?g { ?proposal a cf:Proposal ; dct:title ?title "
        f'FILTER(CONTAINS(LCASE(STR(?title)), "{word}")) }} }} LIMIT 20'
    )


def votes_per_theme_public() -> str:
    """Votes per theme per territory from what is published: individual votes are private (only
    in internal graphs), so the public endpoint counts with each proposal's vote counter."""
    return PREFIXES + (
        "SELECT ?territory ?theme (SUM(?votes) AS ?total) WHERE { GRAPH ?g { ?proposal a cf:Proposal ; "
        "cf:territory ?territory ; dct:subject ?theme ; schema:interactionStatistic ?counter . "
        "?counter schema:interactionType schema:VoteAction ; schema:userInteractionCount ?votes } } "
        "GROUP BY ?territory ?theme"
    )
