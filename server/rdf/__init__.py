"""Representations of RDF for HTTP: formats and content negotiation, conditional GET, compact
JSON-LD, human labels. Shared by every surface that serves RDF."""
