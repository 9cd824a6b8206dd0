"""Exporters: read the store (through :class:`server.records.Records`) and write a format out.

Plain functions with the output stream injected; ``civicfed export …`` and the HTTP surfaces
call the same ones.
"""
