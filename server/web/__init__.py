"""The HTTP surfaces: one module (or package) each, thin views over the services.

``SURFACES`` is the list the application factory registers, in order; ``http`` holds what every
surface needs (who is asking, JSON bodies and answers, conditional GET).
"""

from __future__ import annotations

from . import api, catalog, ckan, dumps, indicators, ldes, linked_data, ns, pages, sparql, void

#: Registered in this order (the JSON API first: flask-smorest installs handlers of its own).
SURFACES = (api, dumps, ns, sparql, linked_data, void, catalog, ckan, ldes, indicators, pages)
