"""civicfed: a federated open-data server for citizen-participation data.

``server.app.create_app`` is the application factory; ``civicfed`` (server/cli.py) is the command
line; docs/architecture.md maps the packages. Importing this package imports nothing else, so
that a query process or a tool loads only what it uses.
"""

__version__ = "0.1.0"
