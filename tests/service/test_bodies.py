"""Decoding client JSON within bounds: nesting depth anywhere in a body, size of free-form fields."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.api import CreateRoom, SendMessage
from schemas.errors import ValidationError
from schemas.notifications import Notify
from schemas.realtime import ClientFrame, Send
from service.web.bodies import MAX_FREE_JSON_BYTES, MAX_JSON_DEPTH, BodyDecoder, free_form_fields

_send = BodyDecoder(SendMessage)


def nested(levels: int, inner: str = "1") -> str:
    """A JSON value of `levels` nested objects around `inner`."""
    return '{"a":' * levels + inner + "}" * levels


def refusal(decoder: BodyDecoder[object], raw: str | bytes) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        decoder.decode(raw)
    return caught.value


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 1_000, 10_000, 100_000])
def test_meta_nested_too_deep_is_a_validation_error_on_meta(levels: int) -> None:
    error = refusal(_send, f'{{"content":"hi","meta":{nested(levels)}}}')
    assert (error.code, error.field) == ("VALIDATION_ERROR", "meta")


def test_meta_nested_as_deep_as_allowed_decodes() -> None:
    message = _send.decode(f'{{"content":"hi","meta":{nested(MAX_JSON_DEPTH)}}}')
    assert message.meta is not None


@pytest.mark.parametrize("where", ["unknown", "content", "client_msg_id"])
def test_deep_value_in_any_other_position_is_a_validation_error_naming_it(where: str) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    error = refusal(_send, f'{{"content":"hi","{where}":{deep}}}')
    assert (error.code, error.field) == ("VALIDATION_ERROR", where)


def test_deep_body_that_is_not_an_object_is_a_validation_error() -> None:
    assert refusal(_send, "[" * 10_000 + "]" * 10_000).code == "VALIDATION_ERROR"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    content = "{[" * 5_000 + '\\"'
    message = _send.decode(f'{{"content":"{content}","meta":{{"k":"{content}"}}}}')
    assert message.content == content.replace('\\"', '"')


def test_an_escaped_field_name_is_named_as_decoded() -> None:
    error = refusal(_send, f'{{"content":"hi","m\\u0065ta":{nested(10_000)}}}')
    assert error.field == "meta"


@pytest.mark.parametrize(
    ("decoder", "body", "field"),
    [
        (_send, '{{"content":"hi","meta":{{"k":"{big}"}}}}', "meta"),
        (BodyDecoder(CreateRoom), '{{"type":"group","metadata":{{"k":"{big}"}}}}', "metadata"),
        (BodyDecoder(Notify), '{{"topic":"t","targets":{{}},"payload":{{"k":"{big}"}}}}', "payload"),
        (BodyDecoder(ClientFrame), '{{"type":"send","room_id":"r","content":"hi","client_msg_id":"c",'
                                   '"meta":{{"k":"{big}"}}}}', "meta"),
    ],
)
def test_free_form_field_over_the_size_limit_is_a_validation_error_on_it(
    decoder: BodyDecoder[object], body: str, field: str
) -> None:
    error = refusal(decoder, body.format(big="x" * MAX_FREE_JSON_BYTES))
    assert (error.code, error.field) == ("VALIDATION_ERROR", field)


def test_free_form_field_at_the_size_limit_decodes() -> None:
    filler = "x" * (MAX_FREE_JSON_BYTES - len('{"k":""}'))
    message = _send.decode(f'{{"content":"hi","meta":{{"k":"{filler}"}}}}')
    assert message.meta == {"k": filler}


def test_typed_fields_are_not_bounded_by_the_free_form_size() -> None:
    members = [f"user-{i:05}" for i in range(1_000)]
    room = BodyDecoder(CreateRoom).decode(json.dumps({"type": "group", "members": members}))
    assert room.members == members


def test_free_form_fields_are_the_any_typed_ones() -> None:
    assert free_form_fields(SendMessage) == {"meta"}
    assert free_form_fields(Notify) == {"payload"}
    assert free_form_fields(ClientFrame) == free_form_fields(Send) == {"meta"}


@given(st.text(alphabet='{}[]":,\\ a1', max_size=300))
def test_no_body_raises_anything_but_a_validation_error(raw: str) -> None:
    with contextlib.suppress(ValidationError):
        _send.decode(raw)
