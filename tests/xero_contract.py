"""Contract checker: Xero Accounting API JSON bodies against Xero's official OpenAPI spec.

``XeroContract.load(path)`` reads ``xero_accounting.yaml`` (OpenAPI 3.0.0) once per path and
converts its OpenAPI 3.0 schema dialect to plain JSON Schema **Draft 4**, which is then checked
with ``jsonschema.Draft4Validator`` (OAS 3.0 schemas are a Draft 4/5 derivative, so Draft 4 is
the nearest match: ``$ref`` replaces its siblings, ``integer`` excludes ``1.0``).

Conversions (see ``openapi_schema_to_jsonschema``):

* ``nullable: true`` -> ``type: [<type>, "null"]`` (and ``null`` added to an ``enum``).
  ``nullable`` beside a ``$ref`` is ignored, as OAS 3.0 ignores every ``$ref`` sibling.
* ``default`` is dropped, so the spec's 23 boolean properties whose ``default`` is the
  *string* ``"false"`` load fine; they are listed in ``XeroContract.boolean_default_quirks``.
* ``format`` is dropped (never enforced): Xero dates are MS-JSON strings such as
  ``"/Date(1439434356790+0000)/"`` although the spec says ``format: date``/``date-time``.
* ``readOnly``/``writeOnly`` are dropped: read-only fields may appear in requests (Xero
  clients echo them back) as well as in responses.
* ``x-*`` vendor extensions (``x-is-money``, ``x-is-msdate``...), ``example``, ``xml``,
  ``externalDocs``, ``discriminator``, ``deprecated`` are dropped; ``x-is-money`` values are
  plain ``type: number``.
* ``additionalProperties`` absent stays absent, i.e. unknown properties are allowed.
* ``$ref: "#/components/..."`` is resolved against the whole (converted) document, registered
  as one ``referencing`` resource.

Bodies are validated as parsed JSON (``dict``/``list``/...); ``None`` means "no body" and is
not checked.
"""

from __future__ import annotations

import copy
import pathlib
import re
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = ["XeroContract", "openapi_schema_to_jsonschema"]

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
JSON_MEDIA_TYPE = "application/json"
_SPEC_URI = "urn:xero-accounting-openapi"
_MAX_MESSAGE = 400

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INTEGER_RE = re.compile(r"^-?[0-9]+$")

# Keywords of an OAS 3.0 Schema Object that have no JSON Schema validation meaning (or that
# must not be validated: ``default``, ``format``, ``readOnly``).
_DROPPED_KEYWORDS = frozenset(
    {
        "default",
        "format",
        "readOnly",
        "writeOnly",
        "nullable",
        "example",
        "xml",
        "externalDocs",
        "discriminator",
        "deprecated",
    }
)
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "definitions")
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf")

# Literal path segment > typed parameter matching its type > untyped string parameter >
# typed parameter not matching (e.g. an InvoiceNumber in /Invoices/{InvoiceID}).
_SCORE_LITERAL = 4
_SCORE_TYPED_PARAM = 3
_SCORE_STRING_PARAM = 2
_SCORE_FALLBACK_PARAM = 1


def openapi_schema_to_jsonschema(schema: Any) -> Any:
    """Return a Draft 4 JSON Schema equivalent of an OpenAPI 3.0 Schema Object (a new object)."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        # OAS 3.0 (like Draft 4): a Reference Object's siblings are ignored.
        return {"$ref": schema["$ref"]}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED_KEYWORDS or key.startswith("x-"):
            continue
        if key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            out[key] = {name: openapi_schema_to_jsonschema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            out[key] = [openapi_schema_to_jsonschema(sub) for sub in value]
        elif key in ("items", "not", "additionalProperties") and isinstance(value, dict):
            out[key] = openapi_schema_to_jsonschema(value)
        elif key == "items" and isinstance(value, list):
            out[key] = [openapi_schema_to_jsonschema(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    if schema.get("nullable") is True:
        declared = out.get("type")
        if isinstance(declared, str):
            out["type"] = [declared, "null"]
        elif isinstance(declared, list) and "null" not in declared:
            out["type"] = [*declared, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _convert_document(node: Any) -> Any:
    """Convert every Schema Object of an OpenAPI document; drop examples elsewhere."""
    if isinstance(node, list):
        return [_convert_document(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("example", "examples"):
            continue
        if key == "schema":
            out[key] = openapi_schema_to_jsonschema(value)
        elif key == "schemas" and isinstance(value, dict):
            out[key] = {name: openapi_schema_to_jsonschema(sub) for name, sub in value.items()}
        else:
            out[key] = _convert_document(value)
    return out


def _find_boolean_default_quirks(schemas: dict[str, Any]) -> list[str]:
    """JSON pointers of boolean properties whose ``default`` is not a boolean (e.g. ``"false"``)."""
    found: list[str] = []

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "boolean" and "default" in node and not isinstance(node["default"], bool):
                found.append(pointer)
            for key, value in node.items():
                walk(value, f"{pointer}/{_escape(str(key))}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{pointer}/{index}")

    walk(schemas, "#/components/schemas")
    return found


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _yaml_loader() -> type:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Route:
    """One path template of the spec, split into segments for matching."""

    __slots__ = ("template", "segments", "operations")

    def __init__(self, template: str, segments: list[tuple[str, str | None]], operations: dict[str, dict]):
        self.template = template
        # (literal_lowercased, None) or (param_name, param_kind) with kind in uuid|integer|string
        self.segments = segments
        self.operations = operations  # method (lower) -> {"operationId", "request", "responses"}


class XeroContract:
    """Validates Xero Accounting API request/response JSON bodies against the OpenAPI spec."""

    _cache: dict[str, XeroContract] = {}
    _cache_lock = threading.Lock()

    def __init__(self, document: dict[str, Any], spec_path: pathlib.Path | None = None):
        self.spec_path = spec_path
        info = document.get("info") or {}
        self.spec_version: str | None = info.get("version")
        self.openapi_version: str | None = document.get("openapi")
        schemas = (document.get("components") or {}).get("schemas") or {}
        self.boolean_default_quirks: list[str] = _find_boolean_default_quirks(schemas)
        # Routes come from the raw document (path parameter formats tell UUIDs from numbers);
        # body schema pointers are the same in the converted one (only examples are dropped).
        self._raw = document
        self._routes = self._build_routes(document)
        del self._raw
        self.document: dict[str, Any] = _convert_document(document)
        self.base_path = self._base_path(self.document)
        self._registry = Registry().with_resource(
            _SPEC_URI, Resource(contents=self.document, specification=DRAFT4)
        )
        self._validators: dict[str, Draft4Validator] = {}
        self._validators_lock = threading.Lock()

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, spec_path: pathlib.Path) -> XeroContract:
        """Load (once per resolved path) and convert the spec."""
        key = str(pathlib.Path(spec_path).resolve())
        with cls._cache_lock:
            cached = cls._cache.get(key)
            if cached is not None:
                return cached
            with open(key, "rb") as handle:
                document = yaml.load(handle, Loader=_yaml_loader())  # a SafeLoader
            if not isinstance(document, dict) or "paths" not in document:
                raise ValueError(f"{key} is not an OpenAPI document")
            contract = cls(document, pathlib.Path(key))
            cls._cache[key] = contract
            return contract

    @staticmethod
    def _base_path(document: dict[str, Any]) -> str:
        for server in document.get("servers") or []:
            url = (server or {}).get("url") or ""
            path = urlsplit(url).path.rstrip("/")
            if path:
                return path
        return ""

    def _build_routes(self, document: dict[str, Any]) -> list[_Route]:
        routes: list[_Route] = []
        for template, item in (document.get("paths") or {}).items():
            item = self._deref(item)
            path_params = self._parameters(item.get("parameters"))
            operations: dict[str, dict] = {}
            kinds: dict[str, str] = {}
            for method in HTTP_METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                params = {**path_params, **self._parameters(operation.get("parameters"))}
                for name, param in params.items():
                    kinds.setdefault(name, self._param_kind(param))
                pointer = f"#/paths/{_escape(template)}/{method}"
                operations[method] = {
                    "operationId": operation.get("operationId") or f"{method.upper()} {template}",
                    "request": self._request_pointer(operation, pointer),
                    "responses": self._response_pointers(operation, pointer),
                }
            segments: list[tuple[str, str | None]] = []
            for part in template.strip("/").split("/"):
                if part.startswith("{") and part.endswith("}"):
                    name = part[1:-1]
                    segments.append((name, kinds.get(name, "string")))
                else:
                    segments.append((part.lower(), None))
            routes.append(_Route(template, segments, operations))
        return routes

    def _deref(self, node: Any) -> Any:
        """Follow a local ``$ref`` (used for path items, parameters, request bodies, responses)."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
            node = self._resolve_pointer(node["$ref"])
            seen += 1
        return node

    def _resolve_pointer(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local references are supported, got {ref!r}")
        node: Any = self._raw
        for token in ref[1:].lstrip("/").split("/") if ref[1:] else []:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node

    def _parameters(self, params: Any) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for param in params or []:
            param = self._deref(param)
            if isinstance(param, dict) and param.get("in") == "path" and param.get("name"):
                out[param["name"]] = param
        return out

    @staticmethod
    def _param_kind(param: dict) -> str:
        schema = param.get("schema") or {}
        if schema.get("format") == "uuid":
            return "uuid"
        if schema.get("type") == "integer":
            return "integer"
        return "string"

    def _request_pointer(self, operation: dict, pointer: str) -> str | None:
        body = operation.get("requestBody")
        if not isinstance(body, dict):
            return None
        if "$ref" in body:
            pointer = body["$ref"]
            body = self._deref(body)
        else:
            pointer = f"{pointer}/requestBody"
        media = self._json_media_key(body)
        if media is None or "schema" not in body["content"][media]:
            return None
        return f"{pointer}/content/{_escape(media)}/schema"

    def _response_pointers(self, operation: dict, pointer: str) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for status, response in (operation.get("responses") or {}).items():
            if isinstance(response, dict) and "$ref" in response:
                target = response["$ref"]
                response = self._deref(response)
            else:
                target = f"{pointer}/responses/{_escape(str(status))}"
            media = self._json_media_key(response) if isinstance(response, dict) else None
            if media is None or "schema" not in response["content"][media]:
                out[str(status).upper()] = None
            else:
                out[str(status).upper()] = f"{target}/content/{_escape(media)}/schema"
        return out

    @staticmethod
    def _json_media_key(holder: dict) -> str | None:
        content = holder.get("content") or {}
        if JSON_MEDIA_TYPE in content:
            return JSON_MEDIA_TYPE
        for media in content:
            base = media.split(";")[0].strip().lower()
            if base == JSON_MEDIA_TYPE or base.endswith("+json"):
                return media
        return None

    # ------------------------------------------------------------------ routing

    def _split_path(self, path: str) -> tuple[list[str], bool] | None:
        """Segments relative to the server base path, and whether the base path was present."""
        raw = path or ""
        if "://" in raw:
            raw = urlsplit(raw).path
        raw = raw.split("?", 1)[0].split("#", 1)[0]
        if not raw.startswith("/"):
            raw = "/" + raw
        had_base = False
        base = self.base_path
        if base and (raw.lower() == base.lower() or raw.lower().startswith(base.lower() + "/")):
            raw = raw[len(base) :]
            had_base = True
        segments = [unquote(part) for part in raw.strip("/").split("/") if part]
        if not segments:
            return None
        return segments, had_base

    @staticmethod
    def _segment_score(actual: str, expected: tuple[str, str | None]) -> int:
        name, kind = expected
        if kind is None:
            return _SCORE_LITERAL if actual.lower() == name else 0
        if kind == "uuid":
            return _SCORE_TYPED_PARAM if _UUID_RE.match(actual) else _SCORE_FALLBACK_PARAM
        if kind == "integer":
            return _SCORE_TYPED_PARAM if _INTEGER_RE.match(actual) else 0
        return _SCORE_STRING_PARAM

    def _match(self, method: str, path: str) -> tuple[_Route, dict] | None:
        split = self._split_path(path)
        if split is None:
            return None
        segments, _ = split
        method = (method or "").lower()
        best: tuple[tuple[int, ...], _Route] | None = None
        for route in self._routes:
            if method not in route.operations or len(route.segments) != len(segments):
                continue
            scores = []
            for actual, expected in zip(segments, route.segments, strict=True):
                score = self._segment_score(actual, expected)
                if score == 0:
                    break
                scores.append(score)
            else:
                # lexicographic: an earlier literal beats an earlier parameter
                key = tuple(scores)
                if best is None or key > best[0]:
                    best = (key, route)
        if best is None:
            return None
        return best[1], best[1].operations[method]

    def operation_for(self, method: str, path: str) -> str | None:
        """operationId for ``method`` + ``path`` (base path, scheme/host and query optional)."""
        match = self._match(method, path)
        return match[1]["operationId"] if match else None

    def path_template_for(self, method: str, path: str) -> str | None:
        """The spec's path template (e.g. ``/Invoices/{InvoiceID}``) that ``path`` matches."""
        match = self._match(method, path)
        return match[0].template if match else None

    # ------------------------------------------------------------------ validation

    def _validator(self, pointer: str) -> Draft4Validator:
        with self._validators_lock:
            validator = self._validators.get(pointer)
            if validator is None:
                validator = Draft4Validator({"$ref": f"{_SPEC_URI}{pointer}"}, registry=self._registry)
                self._validators[pointer] = validator
            return validator

    def _errors(self, pointer: str | None, body: Any) -> list[str]:
        if pointer is None or body is None:
            return []
        errors = sorted(
            self._validator(pointer).iter_errors(body),
            key=lambda error: (list(map(str, error.absolute_path)), error.message),
        )
        return [f"{error.json_path}: {_shorten(error.message)}" for error in errors]

    def schema_pointer(self, method: str, path: str, status: int | None = None) -> str | None:
        """JSON pointer of the request (``status=None``) or response body schema, if any."""
        match = self._match(method, path)
        if match is None:
            return None
        operation = match[1]
        if status is None:
            return operation["request"]
        responses = operation["responses"]
        code = str(int(status))
        for key in (code, f"{code[0]}XX", "DEFAULT"):
            if key in responses:
                return responses[key]
        return None

    def request_errors(self, method: str, path: str, body: Any) -> list[str]:
        """Errors of ``body`` against the operation's ``application/json`` request schema."""
        return self._errors(self.schema_pointer(method, path), body)

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Errors of ``body`` against ``responses[status]`` (else ``default``) JSON schema."""
        return self._errors(self.schema_pointer(method, path, status), body)

    def is_accounting_path(self, path: str) -> bool:
        """True when ``path`` carries the spec's server base path (``/api.xro/2.0``)."""
        split = self._split_path(path)
        return bool(split and split[1])

    def errors_for_call(self, call: dict) -> list[str]:
        """Request and response errors of one recorded call.

        ``call``: ``method``, ``path``, ``status``, ``request_json``, ``response_json``. Paths
        outside this spec (identity: ``/connect/token``, ``/connections``) give ``[]``; a path
        under ``/api.xro/2.0`` that matches no operation is itself reported.
        """
        method = str(call.get("method") or "").upper()
        path = str(call.get("path") or "")
        status = call.get("status")
        prefix = f"{method} {path} {status}"
        if self._match(method, path) is None:
            if self.is_accounting_path(path):
                return [f"{prefix}: no operation in the Xero Accounting spec for {method} {path}"]
            return []
        errors = [
            f"{prefix}: request: {e}" for e in self.request_errors(method, path, call.get("request_json"))
        ]
        if status is not None:
            errors += [
                f"{prefix}: response: {e}"
                for e in self.response_errors(method, path, int(status), call.get("response_json"))
            ]
        return errors


def _shorten(message: str) -> str:
    if len(message) <= _MAX_MESSAGE:
        return message
    return message[: _MAX_MESSAGE - 3] + "..."
