"""The OpenAPI document, made to say what the API really answers.

FastAPI documents what a route declares; some answers come from elsewhere,
and a generated client or a contract test (schemathesis) would otherwise meet
them as surprises. This hook adds them to every operation they apply to, by
rule, so an endpoint added later is documented the same way:

- 401 on every operation behind the API key (its `security` names the key);
- 400 on every operation that takes a JSON body (a body that is not JSON,
  or not UTF-8: FastAPI answers "There was an error parsing the body");
- 413 on every operation that takes a body (api/body_size.py);
- the error body `{"detail": "..."}` (`Error`) on every error answer the
  route left without one (422s keep FastAPI's list of `loc`/`msg`/`type`);
- links from an operation that creates (its answer has an `id`) to the
  operations on what it created;
- the catalog's rules where a model is marked with them (`x-rules`,
  schemas.catalog_rules): which vendors, senders, text lengths, time zones
  (api/catalog_rules.py builds them from the catalog and the settings).

It also answers a 405 with every method the path has (Starlette lists only
the methods of the first route that matched the path).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from smsdispatch.api.schemas import RULES_KEY

ERROR_SCHEMA = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
# Answers the hook documents, by rule (see the module docstring).
UNAUTHORIZED = "a valid X-API-Key is required"
NOT_JSON = "the body is not JSON (or not UTF-8)"
TOO_LARGE = "the body is larger than the configured limit"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
HTTP_METHODS = [m.upper() for m in METHODS]

Document = dict[str, Any]


def install(app: FastAPI, rules: dict[str, Document]) -> None:
    """Serve the completed document; answer 405s with every method of the path.

    `rules`: for each `x-rules` mark a model may carry, the schema its own is
    combined with (api/catalog_rules.py)."""

    def openapi() -> Document:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = completed(document, rules)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(405, method_not_allowed)


def completed(document: Document, rules: dict[str, Document]) -> Document:
    """`document` with the answers and choices the routes do not declare."""
    document = copy.deepcopy(document)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = {
        "title": ERROR_SCHEMA,
        "type": "object",
        "properties": {"detail": {"type": "string", "title": "Detail"}},
        "required": ["detail"],
        "description": "An error answer: what went wrong, for a person to read.",
    }
    for path in document.get("paths", {}).values():
        for method in METHODS:
            if method in path:
                _complete_operation(path[method])
    for schema in schemas.values():
        _apply_rules(schema, rules)
    _link_created(document.get("paths", {}), schemas)
    return document


def _link_created(paths: Document, schemas: Document) -> None:
    """OpenAPI links from each POST that creates (its 2xx answer has an `id`)
    to the operations on what it created: POST /v1/campaigns -> every
    /v1/campaigns/{campaign_id}... operation, with the id it answered. A
    client generator, or a stateful test, then knows where an id goes."""
    for path, item in paths.items():
        post = item.get("post", {})
        for code, response in post.get("responses", {}).items():
            ref = response.get("content", {}).get("application/json", {}).get("schema", {})
            created = schemas.get(str(ref.get("$ref", "")).rsplit("/", 1)[-1], {})
            if not code.startswith("2") or "id" not in created.get("properties", {}):
                continue
            links = {
                f"{method}_{target}": {
                    "operationId": operation["operationId"],
                    "parameters": {name: "$response.body#/id"},
                }
                for target, name in _items_under(paths, path)
                for method, operation in paths[target].items()
                if method in METHODS and "operationId" in operation
            }
            if links:
                response["links"] = links


def _items_under(paths: Document, collection: str) -> list[tuple[str, str]]:
    """The paths `<collection>/{<name>}...` and each one's <name>."""
    prefix = collection + "/{"
    return [
        (path, path[len(prefix) : path.index("}", len(prefix))])
        for path in paths
        if path.startswith(prefix)
    ]


def _complete_operation(operation: Document) -> None:
    responses: Document = operation.setdefault("responses", {})
    if operation.get("security"):
        responses.setdefault(
            "401",
            {
                "description": UNAUTHORIZED,
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
            },
        )
    body = operation.get("requestBody", {}).get("content", {})
    if "application/json" in body:
        responses.setdefault("400", {"description": NOT_JSON})
    if body:
        responses.setdefault("413", {"description": TOO_LARGE})
    for code, response in responses.items():
        if code[0] in "45" and code != "422" and "content" not in response:
            response["content"] = {"application/json": {"schema": ERROR_REF}}


def _apply_rules(schema: Document, rules: dict[str, Document]) -> None:
    """A marked model's schema, combined with its mark's rules: each rule on a
    property joins the property's own schema (allOf); `anyOf` and the rest
    apply to the whole object."""
    mark = schema.pop(RULES_KEY, None)
    if mark is None:
        return
    if mark not in rules:
        raise KeyError(f"no rules for the mark {mark!r} of schema {schema.get('title')!r}")
    extra = copy.deepcopy(rules[mark])
    properties = schema.setdefault("properties", {})
    for name, rule in extra.pop("properties", {}).items():
        own = properties.get(name, {})
        shown = {k: own.pop(k) for k in ("title", "description", "default") if k in own}
        properties[name] = {**shown, "allOf": [own, rule]}
    schema.update(extra)


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 with `Allow` naming every method some route of this path takes."""
    # Each method asked of the routes themselves (Route.matches), so a router
    # included in another, however FastAPI nests it, is asked too.
    routes = getattr(request.app, "routes", [])
    allowed = [
        method
        for method in HTTP_METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]
    detail = exc.detail if isinstance(exc, StarletteHTTPException) else "Method Not Allowed"
    return JSONResponse(
        {"detail": detail},
        status_code=405,
        headers={"Allow": ", ".join(allowed)},
    )
