#!/usr/bin/env python3
"""Write roomlog_client/_api.py from roomlog's OpenAPI document: `python generate.py openapi.json`.

The SDK's types and its one-method-per-route client are generated, never written by hand, so they cannot
drift from the server: the repo's test suite regenerates the file from the live /openapi.json and fails
when the committed copy differs. Reads the document from a file, a URL, or stdin (`-`).
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import urllib.request
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parent / "roomlog_client" / "_api.py"
_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


def class_name(component: str) -> str:
    """A Python class name for a component: `schemas.users.User` → `UsersUser`, `Room` → `Room`."""
    parts = component.split(".")
    if len(parts) > 1:
        parts = parts[-2:]
    return "".join(p[:1].upper() + p[1:] for p in parts)


def method_name(operation_id: str) -> str:
    """A Python method name for an operationId: `post_api-keys` → `post_api_keys`."""
    return re.sub(r"\W", "_", operation_id)


def annotation(schema: dict[str, Any]) -> str:
    """The Python type of a JSON schema, as source text."""
    if "$ref" in schema:
        return class_name(schema["$ref"].rsplit("/", 1)[1])
    if "anyOf" in schema:
        return " | ".join(dict.fromkeys(annotation(s) for s in schema["anyOf"]))
    if "const" in schema:
        schema = {"enum": [schema["const"]]}
    if "enum" in schema:
        return "Literal[" + ", ".join(json.dumps(v) if isinstance(v, str) else repr(v) for v in schema["enum"]) + "]"
    kind = schema.get("type")
    if kind == "array":
        return f"list[{annotation(schema.get('items', {}))}]"
    if kind == "object":
        extra = schema.get("additionalProperties")
        value = annotation(extra) if isinstance(extra, dict) and extra else "Any"
        return f"dict[str, {value}]"
    if isinstance(kind, list):
        return " | ".join(_SCALARS.get(k, "Any") for k in kind)
    return _SCALARS.get(kind, "Any") if isinstance(kind, str) else "Any"


def typed_dict(name: str, schema: dict[str, Any]) -> str:
    """A TypedDict for an object component; optional fields are NotRequired."""
    required = set(schema.get("required", []))
    fields = []
    for field, spec in schema.get("properties", {}).items():
        kind = annotation(spec)
        fields.append((field, kind if field in required else f"NotRequired[{kind}]"))
    doc = schema.get("description", "").strip().replace('"""', "'''")
    if not fields:
        return f"{name} = dict[str, Any]\n"
    if any(not f.isidentifier() or keyword.iskeyword(f) for f, _ in fields):
        body = ", ".join(f"{json.dumps(f)}: {json.dumps(k)}" for f, k in fields)  # strings: forward references
        return f'{name} = TypedDict("{name}", {{{body}}})\n'
    lines = [f"class {name}(TypedDict):"]
    if doc:
        lines.append(f'    """{doc}"""\n')
    lines += [f"    {f}: {k}" for f, k in fields]
    return "\n".join(lines) + "\n"


def _success(operation: dict[str, Any]) -> tuple[int, str]:
    status = min(int(s) for s in operation["responses"] if s.startswith("2"))
    content = operation["responses"][str(status)].get("content", {}).get("application/json")
    return status, annotation(content["schema"]) if content else "Any"


def method(path: str, verb: str, operation: dict[str, Any]) -> str:
    """One async method calling this operation; path parameters positional, query ones keyword-only."""
    params = operation.get("parameters", [])
    in_path = [p["name"] for p in params if p["in"] == "path"]
    in_query = [p for p in params if p["in"] == "query"]
    args = ["self", *(f"{p}: str" for p in in_path)]
    body = operation.get("requestBody")
    if body is not None:
        args.append(f"body: {annotation(body['content']['application/json']['schema'])}")
    if in_query:
        args.append("*")
        args += [f"{q['name']}: {annotation(q['schema'])} | None = None" for q in in_query]
    _, answer = _success(operation)
    url = re.sub(r"\{(\w+)\}", r"{_segment(\1)}", path)
    query = "{" + ", ".join(f'"{q["name"]}": {q["name"]}' for q in in_query) + "}" if in_query else "None"
    summary = operation.get("summary", "").replace('"""', "'''")
    signature = ", ".join(args)
    return (
        f"    async def {method_name(operation['operationId'])}({signature}) -> {answer}:\n"
        f'        """{verb.upper()} {path}: {summary}"""\n'
        f'        return cast({_quote(answer)}, await self._call("{verb.upper()}", {"f" if in_path else ""}"{url}", '
        f"query={query}, body={'body' if body is not None else 'None'}))\n"
    )


def _quote(kind: str) -> str:
    return json.dumps(kind)


def generate(document: dict[str, Any]) -> str:
    """The source of roomlog_client/_api.py for this OpenAPI document."""
    components = document.get("components", {}).get("schemas", {})
    out = [
        '"""Generated from roomlog\'s /openapi.json by clients/python/generate.py. Do not edit by hand."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any, Literal, NotRequired, TypedDict, cast",
        "from urllib.parse import quote",
        "",
        f"API_VERSION = {json.dumps(document.get('info', {}).get('version', ''))}",
        "",
        "",
        "def _segment(value: str) -> str:",
        '    """A path parameter as one percent-encoded UTF-8 path segment."""',
        '    return quote(value, safe="")',
        "",
    ]
    for component, schema in components.items():
        out += ["", typed_dict(class_name(component), schema)]
    out += [
        "",
        "class Operations:",
        '    """One method per route of the API; `_call` (the transport) is supplied by RoomlogClient."""',
        "",
        "    async def _call(self, method: str, path: str, *, query: dict[str, Any] | None, body: Any) -> Any:",
        "        raise NotImplementedError",
        "",
    ]
    for path, verbs in document.get("paths", {}).items():
        for verb, operation in verbs.items():
            out.append(method(path, verb, operation))
    return "\n".join(out).rstrip() + "\n"


def read_document(source: str) -> dict[str, Any]:
    """The OpenAPI document from a file path, an http(s) URL, or `-` for stdin."""
    if source == "-":
        return dict(json.load(sys.stdin))
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as answer:
            return dict(json.load(answer))
    return dict(json.loads(Path(source).read_text()))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py openapi.json|URL|-")
    TARGET.write_text(generate(read_document(sys.argv[1])))
    print(f"wrote {TARGET}")
