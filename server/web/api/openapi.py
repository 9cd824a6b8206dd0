"""The OpenAPI 3.1 document of the JSON API (flask-smorest over apispec): errors documented as
RFC 9457 problem details, bearer keys on writes, and the docs page at ``/api/v1/docs``."""

from __future__ import annotations

import http

from flask import Flask, render_template, url_for
from flask_smorest import Api
from marshmallow import Schema, fields

from ...errors import PROBLEM_JSON


class ErrorItemSchema(Schema):
    pointer = fields.String(metadata={"description": "JSON Pointer (as a URI fragment) to the body field."})
    parameter = fields.String(metadata={"description": "The query or path parameter."})
    detail = fields.String()


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error."""

    type = fields.String(metadata={"description": "URI of the kind of problem."})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String(metadata={"description": "What went wrong, for people."})
    instance = fields.String(metadata={"description": "The request path."})
    errors = fields.List(fields.Nested(ErrorItemSchema), metadata={"description": "Each field or parameter at fault."})


class CivicfedApi(Api):
    """flask-smorest's Api, documenting errors as RFC 9457 problem details."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status >= 400:
                self.spec.components.response(
                    status.name,
                    {"description": status.phrase, "content": {PROBLEM_JSON: {"schema": ProblemSchema}}},
                    lazy=True,
                )
        self.spec.components.response(
            "DEFAULT_ERROR",
            {"description": "Error", "content": {PROBLEM_JSON: {"schema": ProblemSchema}}},
            lazy=True,
        )


class IngestReportSchema(Schema):
    territory = fields.String()
    written = fields.Boolean(metadata={"description": "False when nothing was written."})
    created = fields.Integer()
    updated = fields.Integer()
    deleted = fields.Integer()
    rejected = fields.Integer()
    unchanged = fields.Integer(metadata={"description": "Records already stored exactly so (not rewritten)."})
    superseded = fields.Integer(metadata={"description": "Lines followed by a later line on the same record."})
    accepted = fields.Integer(metadata={"description": "Lines that passed every check."})
    quads = fields.Integer(metadata={"description": "Triples written."})
    errors = fields.List(
        fields.Dict(), metadata={"description": "One entry per rejected line, the first INGEST_MAX_ERRORS of them."}
    )
    errors_omitted = fields.Integer(metadata={"description": "Rejected lines past INGEST_MAX_ERRORS, not listed."})


def register(app: Flask, blueprint: object) -> Api:
    """Describe ``blueprint`` in the application's OpenAPI document and serve its docs page."""
    app.config.setdefault("API_TITLE", "civicfed JSON API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = CivicfedApi(
        app,
        spec_kwargs={
            "info": {
                "description": (
                    "Read and write the citizen-participation records of the territories this server hosts. "
                    "Reads are public; writes need `Authorization: Bearer <API key>`. Errors are RFC 9457 "
                    "problem details."
                )
            },
            # Relative: the API is wherever the client reached this document (a proxy, another
            # port), which the configured base IRI need not be.
            "servers": [{"url": "/"}],
        },
    )
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "An API key made with `civicfed key create`."}
    )
    api.spec.options["security"] = []
    api.register_blueprint(blueprint)

    @app.get("/api/v1/docs")
    def api_docs() -> str:
        return render_template("api_docs.html", spec=api.spec.to_dict(), spec_url=url_for("api-docs.openapi_json"))

    return api
