"""Client JSON — request bodies and WebSocket frames — decoded into msgspec types within fixed bounds.

msgspec decodes nested values recursively and raises RecursionError about 1,000 levels down, so the
body is measured before msgspec sees it: no value may nest deeper than `MAX_JSON_DEPTH` levels below
the body's top level, and no free-form field (typed `Any` or `dict[str, Any]`, such as `meta`) may take
more than `MAX_FREE_JSON_BYTES` of the body. Both are cheap to rule out for an ordinary body (a count
of brackets and its length), so only bodies that come near a bound are scanned token by token.
"""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

import msgspec

from schemas.errors import ValidationError

T = TypeVar("T")

# Levels of nesting a value of a body's field may have: {"meta": {"a": {"b": 1}}} nests meta 2 deep.
MAX_JSON_DEPTH = 32
# Bytes of the body one free-form field (meta, metadata, payload) may take, as sent.
MAX_FREE_JSON_BYTES = 16 * 1024

# The body's own object is level 1, so its fields' values may reach level 1 + MAX_JSON_DEPTH.
_MAX_LEVEL = 1 + MAX_JSON_DEPTH
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_PATH = re.compile(r"at `\$\.?([^`]*)`")
_NAMED = re.compile(r"field `([^`]+)`")


class BodyDecoder(Generic[T]):
    """Decodes client JSON into `type_`; any bad body is a ValidationError (400) naming the field when it can."""

    def __init__(self, type_: Any, *, what: str = "request body") -> None:
        self._type = type_
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(type_)
        self._free = free_form_fields(type_)
        self._what = what

    def decode(self, raw: bytes | str) -> T:
        """The decoded value, once the body is within the nesting and size bounds."""
        data = raw.encode() if isinstance(raw, str) else raw
        check_bounds(data, self._free)
        try:
            return self._decode(data)
        except msgspec.ValidationError as exc:
            raise ValidationError(_describe(str(exc)), field=field_of(str(exc))) from None
        except msgspec.DecodeError:
            raise ValidationError(f"{self._what} is not valid JSON") from None

    def _decode(self, data: bytes) -> T:
        try:
            return self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            if "got `float`" not in str(exc):
                raise
        # JSON Schema counts 2.0 as the integer 2, so a body the description admits is not refused for that
        # spelling; only a body that failed on a float takes this slower path.
        result: T = msgspec.convert(_whole_floats_as_ints(msgspec.json.decode(data)), self._type)
        return result


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    return value


def check_bounds(data: bytes, free_fields: frozenset[str]) -> None:
    """Raise ValidationError when a value nests too deep or a free-form field is too large."""
    if data.count(b"{") + data.count(b"[") <= _MAX_LEVEL and len(data) <= MAX_FREE_JSON_BYTES:
        return  # neither bound can be reached
    depth = 0
    in_object = False  # whether the body is an object (whose level-1 strings include field names)
    key: str | None = None  # the top-level field being read
    start = 0
    for token in _TOKEN.finditer(data):
        char = data[token.start()]
        if char == 0x22:  # a string: at level 1 the last one before a value is that value's field name
            if depth == 1 and in_object:
                key = _key(token.group())
        elif char in (0x7B, 0x5B):  # { [
            depth += 1
            if depth == 1:
                in_object = char == 0x7B
            if depth > _MAX_LEVEL:
                raise ValidationError(f"JSON nests more than {MAX_JSON_DEPTH} levels deep", field=key)
            if depth == 2:
                start = token.start()
        else:
            depth -= 1
            if depth == 1 and key in free_fields and token.end() - start > MAX_FREE_JSON_BYTES:
                raise ValidationError(f"{key} takes more than {MAX_FREE_JSON_BYTES} bytes of JSON", field=key)


def free_form_fields(type_: Any) -> frozenset[str]:
    """The fields of a Struct (or of every Struct in a union) whose values are free-form JSON."""
    info = msgspec.inspect.type_info(type_)
    structs = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    return frozenset(
        field.encode_name
        for struct in structs if isinstance(struct, msgspec.inspect.StructType)
        for field in struct.fields if _free_form(field.type)
    )


def field_of(message: str) -> str | None:
    """The field a msgspec validation message is about (`$.members[0]` → `members[0]`)."""
    named = _NAMED.search(message)
    path = _PATH.search(message)
    parts = [p for p in ((path.group(1) if path else ""), (named.group(1) if named else "")) if p]
    return ".".join(parts) or None


def _free_form(t: msgspec.inspect.Type) -> bool:
    if isinstance(t, msgspec.inspect.UnionType):
        return any(_free_form(member) for member in t.types)
    if isinstance(t, msgspec.inspect.DictType):
        return isinstance(t.value_type, msgspec.inspect.AnyType)
    return isinstance(t, msgspec.inspect.AnyType)


def _key(token: bytes) -> str | None:
    if b"\\" not in token:
        return token[1:-1].decode(errors="replace")
    try:
        return msgspec.json.decode(token, type=str)
    except msgspec.DecodeError:
        return None


def _describe(message: str) -> str:
    return message.split(" - at `", 1)[0]
