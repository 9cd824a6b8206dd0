"""The OpenAPI 3.1 document of the JSON API (flask-smorest over apispec): errors documented as
RFC 9457 problem details, bearer keys on writes, every operation named by its view (its
``operationId``), the links a client can follow from an answer, and the docs page at
``/api/v1/docs``.

The schemas say what the server refuses, from the marshmallow schemas themselves: a field's
``JSON_SCHEMA`` (``model.schemas.Documented``: text without control characters, date-times of the
years 1000-9000, http(s) URLs, amounts to 4 decimal places) reaches its metadata, a schema's
``JSON_SCHEMA`` (a vote's voter, a rule's content) its component, and the page size its maximum
from the application's MAX_PAGE_SIZE."""

from __future__ import annotations

import http
from typing import Any

from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter, resolver
from flask import Flask, render_template, url_for
from flask_smorest import Api
from marshmallow import INCLUDE, Schema, fields, validate

from ...errors import PROBLEM_JSON
from ...model.kinds import KINDS, RECORD_KINDS, Kind
from ...model.rdf import Ref, Target


class ErrorItemSchema(Schema):
    pointer = fields.String(metadata={"description": "JSON Pointer (as a URI fragment) to the body field."})
    parameter = fields.String(metadata={"description": "The query or path parameter."})
    detail = fields.String()


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error."""

    class Meta:
        # Extension members (RFC 9457 §3.2): a 404's `territory`, a 410's `record` (the tombstone),
        # a rejected ingest's report counts.
        unknown = INCLUDE

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


class TombstoneSchema(Schema):
    """What stays of a deleted record: the answer to its DELETE, in a 410 Gone, and in lists that
    include deletions (``include_deleted``, ``modified_since``)."""

    id = fields.String(required=True)
    iri = fields.String(required=True)
    territory = fields.String(required=True)
    deleted = fields.Boolean(required=True, metadata={"enum": [True]})
    deleted_at = fields.DateTime(required=True)
    record_modified = fields.DateTime(required=True, metadata={"description": "When this server deleted it."})


class AnyOf(fields.Field):
    """Documentation only: a value matching one of ``schemas`` (OpenAPI ``anyOf``)."""

    def __init__(self, *schemas: type[Schema], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schemas = schemas


def _any_of(converter: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    if not isinstance(field, AnyOf):
        return {}
    return {"anyOf": [converter.resolve_nested_schema(schema) for schema in field.schemas]}


class PageSize(fields.Integer):
    """The ``limit`` of a list: from 1 to the application's MAX_PAGE_SIZE, which ``register``
    writes into the document (the list refuses more with a 400)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=1), **kwargs)


class Converter(OpenAPIConverter):
    """apispec's converter, adding a schema's own ``JSON_SCHEMA`` (what its schema-level
    validation requires: ``anyOf`` required fields…) to its JSON Schema."""

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        return {**super().schema2jsonschema(schema), **getattr(schema, "JSON_SCHEMA", {})}


class CivicfedMarshmallowPlugin(MarshmallowPlugin):
    Converter = Converter


def schema_name(schema: type[Schema] | Schema) -> str:
    """Component names: ``Proposal`` for ProposalSchema, ``NewProposal`` for its POST body (the
    server makes the id, so the body has none)."""
    name = resolver(schema)
    if isinstance(schema, Schema) and "id" in schema.exclude:
        return f"New{name}"
    return name


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


class OperationIds(BasePlugin):
    """Every operation's ``operationId`` is the endpoint of its view (``proposal_get``): one name
    per operation, which links use to name their targets."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        endpoint = rule.endpoint.rpartition(".")[2]
        for method, operation in operations.items():
            operation.setdefault("operationId", endpoint if len(operations) == 1 else f"{endpoint}_{method}")


# -- links: what a client can do next with an answer (OpenAPI Link Objects) ----------------------
#
# Made from the data model, registered once in components/links as ``{kind}.{name}`` and named by
# the responses that hold them (``links(kind, …)``). An answer holding a record gives the
# ``territory`` and ``id`` of the record to get, replace, change or delete; a page, those of its
# first item; a record's references (``process``, ``handled_by``, ``proposals``…) lead to the
# records they name, and the lists that filter on a record (a process's proposals, a proposal's
# comments) lead to the records naming it.

#: What an answer holding one record lets a client do with it: link name → operation.
ACTIONS = {"get": "get", "replace": "put", "change": "patch", "delete": "delete"}
_VERBS = {"get": "Get", "replace": "Replace", "change": "Change some fields of", "delete": "Delete"}


def _record_parameters(kind: Kind, at: str = "") -> dict[str, str]:
    """The path parameters of the record at JSON pointer ``at`` of an answer."""
    if kind.name == "territory":
        return {"territory": f"$response.body#{at}/id"}
    return {"territory": f"$response.body#{at}/territory", "local_id": f"$response.body#{at}/id"}


def _kind_links(kind: Kind) -> dict[str, dict[str, Any]]:
    """The links from an answer holding a record (or a page) of ``kind``, by name."""
    out: dict[str, dict[str, Any]] = {}
    for name, operation in ACTIONS.items():
        if kind.name == "territory" and name == "delete":
            continue  # territories are created and removed with the command line
        out[name] = {
            "operationId": f"{kind.name}_{operation}",
            "parameters": _record_parameters(kind),
            "description": f"{_VERBS[name]} this {kind.name}.",
        }
    out["first"] = {
        "operationId": f"{kind.name}_get",
        "parameters": _record_parameters(kind, "/items/0"),
        "description": f"Get the first {kind.name} of the page.",
    }
    if kind.name == "territory":
        for other in RECORD_KINDS:
            out[other.plural] = {
                "operationId": f"{other.name}_list",
                "parameters": {"territory": "$response.body#/id"},
                "description": f"The {other.plural} of this territory.",
            }
        return out
    territory = "$response.body#/territory"
    # The records it names…
    for f in kind.mapping.fields:
        if isinstance(f, Ref):
            out[f.name] = {
                "operationId": f"{f.kind}_get",
                "parameters": {"territory": territory, "local_id": f"$response.body#/{f.name}{'/0' if f.many else ''}"},
                "description": f"Get the {f.kind} named by `{f.name}`{' (the first)' if f.many else ''}.",
            }
    # …and the lists of those naming it.
    for other in RECORD_KINDS:
        for param, f in other.filters.items():
            if isinstance(f, Ref) and f.kind == kind.name:
                value = "$response.body#/id"
            elif isinstance(f, Target) and kind.name in f.kinds:
                value = f"{kind.name}/{{$response.body#/id}}"
            else:
                continue
            name = other.plural if other.plural not in out else f"{other.plural}_by_{param}"
            out[name] = {
                "operationId": f"{other.name}_list",
                "parameters": {"territory": territory, param: value},
                "description": f"The {other.plural} naming this {kind.name} in `{f.name}`.",
            }
    return out


LINKS: dict[str, dict[str, dict[str, Any]]] = {kind.name: _kind_links(kind) for kind in KINDS.values()}


def link_names(kind: Kind, *names: str) -> dict[str, str]:
    """The ``links`` of a response: the named links of ``kind`` as references to components/links;
    ``"related"`` stands for every link to the records it names and to the lists naming it."""
    related = [n for n in LINKS[kind.name] if n not in ACTIONS and n != "first"]
    chosen = [n for name in names for n in (related if name == "related" else [name])]
    unknown = [n for n in chosen if n not in LINKS[kind.name]]
    if unknown:
        raise KeyError(f"no link {unknown[0]!r} from a {kind.name}")
    return {n: f"{kind.name}.{n}" for n in chosen}


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
            "marshmallow_plugin": CivicfedMarshmallowPlugin(schema_name_resolver=schema_name),
            "extra_plugins": [OperationIds()],
        },
    )
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "An API key made with `civicfed key create`."}
    )
    api.spec.options["security"] = []
    api.ma_plugin.converter.add_attribute_function(_any_of)
    max_page_size = app.config["MAX_PAGE_SIZE"]

    def _page_size(converter: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"maximum": max_page_size} if isinstance(field, PageSize) else {}

    api.ma_plugin.converter.add_attribute_function(_page_size)
    for kind_name, kind_links in LINKS.items():
        for name, link in kind_links.items():
            api.spec.components.link(f"{kind_name}.{name}", link)
    api.register_blueprint(blueprint)

    @app.get("/api/v1/docs")
    def api_docs() -> str:
        return render_template("api_docs.html", spec=api.spec.to_dict(), spec_url=url_for("api-docs.openapi_json"))

    return api
