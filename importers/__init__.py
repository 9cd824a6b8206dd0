"""Importers: read a source, yield validated records, hand them to the shared loader.

Each importer is a plain function over the store interface (through :class:`server.records.Records`)
with the input stream injected, so the HTTP API and the ``civicfed import`` command run the same code.
"""
