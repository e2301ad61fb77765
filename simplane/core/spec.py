"""The official OpenAPI specs, loaded once: each operation's method, path and typed parameters."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SPECS = Path(__file__).resolve().parent.parent / "specs"


@dataclass(frozen=True)
class Param:
    name: str
    location: str  # path | query | form
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str  # as in the spec, e.g. /v1/Sims/{Sid}
    params: dict[str, Param] = field(default_factory=dict)
    success_status: int = 200
    list_key: str | None = None
    resource_schema: str | None = None
    read_only: bool = False  # the handler writes through transactions of its own, if at all
    missing_code: int = 20001  # the error code of a missing required parameter
    json_body: bool = False  # the request body is JSON (left to the handler), not a form


def file_of(product: str) -> str:
    """The spec of a Twilio product, as a name under specs/."""
    return f"twilio_{product}_v1.json"


@cache
def load_file(name: str) -> dict[str, Any]:
    """A spec under specs/ by its name there (e.g. `kore/kore-supersim-v1.json`)."""
    return json.loads((SPECS / name).read_text())


def load(product: str) -> dict[str, Any]:
    return load_file(file_of(product))


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


@cache
def operations(product: str) -> dict[str, Operation]:
    return operations_of(file_of(product))


METHODS = ("get", "post", "patch", "put", "delete")


@cache
def operations_of(name: str) -> dict[str, Operation]:
    """The operations of the spec `name` under specs/, by operationId (`METHOD /path` for one
    without)."""
    spec = load_file(name)
    ops: dict[str, Operation] = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            params = {}
            for p in [*item.get("parameters", []), *op.get("parameters", [])]:
                p = _parameter(spec, p)
                if p["in"] in ("path", "query"):
                    params[p["name"]] = Param(p["name"], p["in"], resolve(spec, p.get("schema", {})),
                                              bool(p.get("required")))
            content = op.get("requestBody", {}).get("content", {})
            body = resolve(spec, content.get("application/x-www-form-urlencoded", {})
                           .get("schema", {}))
            required = set(body.get("required", []))
            for pname, schema in body.get("properties", {}).items():
                params[pname] = Param(pname, "form", resolve(spec, schema), pname in required)
            codes = sorted(int(c) for c in op["responses"] if c.isdigit() and c < "300")
            list_key, resource = _response_shape(spec, op, codes[0] if codes else 200)
            operation_id = op.get("operationId") or f"{method.upper()} {path}"
            ops[operation_id] = Operation(
                operation_id, method.upper(), path, params, codes[0] if codes else 200,
                list_key, resource, json_body="application/json" in content,
            )
    return ops


def _parameter(spec: dict, p: dict) -> dict:
    ref = p.get("$ref")
    return spec["components"]["parameters"][ref.rsplit("/", 1)[1]] if ref else p


def _response_shape(spec: dict, op: dict, status: int) -> tuple[str | None, str | None]:
    content = op["responses"].get(str(status), {}).get("content", {}).get("application/json")
    if not content:
        return None, None
    schema = content["schema"]
    if "$ref" in schema:
        return None, schema["$ref"].rsplit("/", 1)[1]
    for key, prop in schema.get("properties", {}).items():
        if key != "meta" and prop.get("type") == "array":
            return key, prop["items"]["$ref"].rsplit("/", 1)[1]
    return None, None


def resource_fields(product: str, schema_name: str) -> list[str]:
    return list(load(product)["components"]["schemas"][schema_name]["properties"])


def public_document(products: list[str], extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The server's own OpenAPI document: the official specs of the products it serves, each under
    its /{product} prefix, merged into one."""
    doc: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": "simplane", "version": "1.0.0",
                 "description": "Twilio-compatible IoT connectivity APIs served by simplane."},
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
        "security": [{"accountSid_authToken": []}],
    }
    for product in products:
        spec = copy.deepcopy(load(product))
        for path, item in spec["paths"].items():
            item.pop("servers", None)
            doc["paths"][f"/{product}{path}"] = item
        for name, schema in spec["components"]["schemas"].items():
            if "_enum_" in name:
                # Twilio answers null for an enum it has no value for (reset_status of a SIM that
                # is not resetting, say); the official specs omit `nullable` on these.
                schema["nullable"] = True
            doc["components"]["schemas"][name] = schema
        doc["components"]["securitySchemes"].update(spec["components"].get("securitySchemes", {}))
    doc["paths"].update(extra_paths or {})
    return doc
