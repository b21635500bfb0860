"""The pure rules in service/domain/: rooms, DM keys, messages and acks, without any I/O."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from schemas.api import MAX_CONTENT_CHARS, CreateRoom, SendMessage, UpdateRoom
from schemas.errors import (
    Blocked,
    Forbidden,
    IdempotencyKeyReused,
    MessageTooLong,
    NotAMember,
    NotFound,
    NotRoomAdmin,
    ValidationError,
)
from schemas.events import AckRecorded, MemberJoined, MemberRemoved, MessageSent, RoomCreated, RoomUpdated
from service.domain.acks import decide_ack
from service.domain.messages import check_retry, decide_send, send_idempotency_key
from service.domain.rooms import (
    Actor,
    RoomState,
    decide_add_members,
    decide_create,
    decide_remove_member,
    decide_update,
    dm_key,
)

ALICE = Actor("alice", "member")  # the room's admin
BOB = Actor("bob", "member")  # a plain member
MALLORY = Actor("mallory", "member")  # not in the room
TENANT_ADMIN = Actor("root", "admin")  # a tenant admin, not in the room
GROUP = RoomState(room_type="group", members={"alice": "admin", "bob": "member"})
DM = RoomState(room_type="dm", members={"alice": "admin", "bob": "member"})

user_ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
# Ids rich in the characters a naive "dm:a:b" key would confuse.
tricky_ids = st.text(st.sampled_from(":%ab2A_ "), min_size=1, max_size=8) | user_ids


# --- rooms.decide_create -------------------------------------------------------------------------


def test_create_makes_the_actor_admin_and_the_others_members() -> None:
    events, key = decide_create(ALICE, CreateRoom(type="group", members=["bob", "carol"], name="n"), "room_1")
    assert events == [
        RoomCreated(room_id="room_1", room_type="group", created_by="alice", name="n"),
        MemberJoined(user_id="alice", role="admin", added_by="alice"),
        MemberJoined(user_id="bob", role="member", added_by="alice"),
        MemberJoined(user_id="carol", role="member", added_by="alice"),
    ]
    assert key is None


def test_create_drops_repeated_members_and_the_actor_from_members() -> None:
    events, _ = decide_create(ALICE, CreateRoom(type="channel", members=["bob", "alice", "bob"]), "room_1")
    joined = [e.user_id for e in events if isinstance(e, MemberJoined)]
    assert joined == ["alice", "bob"]


def test_create_dm_carries_the_pair_key() -> None:
    events, key = decide_create(BOB, CreateRoom(type="dm", members=["alice"]), "room_1")
    assert key == dm_key("alice", "bob")
    assert isinstance(events[0], RoomCreated)
    assert events[0].unique_key == key


@pytest.mark.parametrize("members", [[], ["alice"], ["bob", "carol"]])
def test_create_dm_without_exactly_one_other_user_is_refused(members: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        decide_create(ALICE, CreateRoom(type="dm", members=members), "room_1")
    assert info.value.field == "members"


def test_create_refuses_to_pull_in_a_user_who_blocked_the_actor() -> None:
    with pytest.raises(Blocked) as info:
        decide_create(ALICE, CreateRoom(type="group", members=["bob", "carol"]), "room_1",
                      blocked_by=frozenset({"carol"}))
    assert (info.value.code, info.value.status, info.value.field) == ("BLOCKED", 403, "members")


# --- rooms.dm_key --------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(a=tricky_ids, b=tricky_ids)
def test_dm_key_is_the_same_whoever_creates_the_dm(a: str, b: str) -> None:
    assert dm_key(a, b) == dm_key(b, a)


@settings(max_examples=150, deadline=None)
@given(a=tricky_ids, b=tricky_ids, c=tricky_ids, d=tricky_ids)
@example(a="a:b", b="c", c="a", d="b:c")
def test_dm_key_differs_for_different_pairs(a: str, b: str, c: str, d: str) -> None:
    same_pair = sorted((a, b)) == sorted((c, d))
    assert (dm_key(a, b) == dm_key(c, d)) == same_pair


def test_dm_key_keeps_colons_in_ids_apart() -> None:
    assert dm_key("a:b", "c") != dm_key("a", "b:c")


# --- rooms.decide_update -------------------------------------------------------------------------


def test_update_by_a_room_admin_renames() -> None:
    [event] = decide_update(GROUP, ALICE, UpdateRoom(name="new"))
    assert event == RoomUpdated(updated_by="alice", name="new", set_name=True)


def test_update_by_a_tenant_admin_outside_the_room_renames() -> None:
    [event] = decide_update(GROUP, TENANT_ADMIN, UpdateRoom(name="new"))
    assert event == RoomUpdated(updated_by="root", name="new", set_name=True)


def test_update_with_null_name_clears_the_name() -> None:
    [event] = decide_update(GROUP, ALICE, UpdateRoom(name=None))
    assert isinstance(event, RoomUpdated)
    assert (event.name, event.set_name, event.set_metadata) == (None, True, False)


def test_update_of_metadata_leaves_the_name_alone() -> None:
    [event] = decide_update(GROUP, ALICE, UpdateRoom(metadata={"topic": "x"}))
    assert isinstance(event, RoomUpdated)
    assert (event.set_name, event.set_metadata, event.metadata) == (False, True, {"topic": "x"})


def test_update_by_a_plain_member_is_refused() -> None:
    with pytest.raises(NotRoomAdmin):
        decide_update(GROUP, BOB, UpdateRoom(name="new"))


def test_update_by_a_non_member_is_refused_as_not_a_member() -> None:
    with pytest.raises(NotAMember):
        decide_update(GROUP, MALLORY, UpdateRoom(name="new"))


def test_update_with_nothing_to_change_is_refused() -> None:
    with pytest.raises(ValidationError):
        decide_update(GROUP, ALICE, UpdateRoom(name=UNSET, metadata=UNSET))


# --- rooms.decide_add_members / decide_remove_member ---------------------------------------------


def test_add_members_skips_present_and_repeated_users() -> None:
    events = decide_add_members(GROUP, ALICE, ["bob", "carol", "carol", "dave"])
    assert events == [
        MemberJoined(user_id="carol", role="member", added_by="alice"),
        MemberJoined(user_id="dave", role="member", added_by="alice"),
    ]


def test_add_members_by_a_plain_member_is_refused() -> None:
    with pytest.raises(NotRoomAdmin):
        decide_add_members(GROUP, BOB, ["carol"])


def test_add_members_to_a_dm_is_refused() -> None:
    with pytest.raises(Forbidden):
        decide_add_members(DM, ALICE, ["carol"])


def test_add_members_refuses_a_new_user_who_blocked_the_actor() -> None:
    with pytest.raises(Blocked):
        decide_add_members(GROUP, ALICE, ["carol"], blocked_by=frozenset({"carol"}))


def test_add_members_ignores_a_block_by_someone_already_in_the_room() -> None:
    assert decide_add_members(GROUP, ALICE, ["bob"], blocked_by=frozenset({"bob"})) == []


def test_a_member_may_leave() -> None:
    assert decide_remove_member(GROUP, BOB, "bob") == [MemberRemoved(user_id="bob", removed_by="bob")]


def test_a_room_admin_may_remove_another_member() -> None:
    assert decide_remove_member(GROUP, ALICE, "bob") == [MemberRemoved(user_id="bob", removed_by="alice")]


def test_a_tenant_admin_may_remove_a_member() -> None:
    assert decide_remove_member(GROUP, TENANT_ADMIN, "bob") == [MemberRemoved(user_id="bob", removed_by="root")]


def test_a_plain_member_may_not_remove_another() -> None:
    with pytest.raises(NotRoomAdmin):
        decide_remove_member(GROUP, BOB, "alice")


def test_a_non_member_may_not_remove_anyone() -> None:
    with pytest.raises(NotAMember):
        decide_remove_member(GROUP, MALLORY, "bob")


def test_removing_someone_not_in_the_room_is_not_found() -> None:
    with pytest.raises(NotFound) as info:
        decide_remove_member(GROUP, ALICE, "carol")
    assert info.value.field == "user_id"


def test_dm_members_cannot_be_removed() -> None:
    with pytest.raises(Forbidden):
        decide_remove_member(DM, ALICE, "bob")


# --- messages.decide_send ------------------------------------------------------------------------


def test_send_builds_the_message_event() -> None:
    cmd = SendMessage(content="hi", meta={"k": 1}, client_msg_id="c1")
    assert decide_send("alice", cmd, "msg_1") == MessageSent(
        message_id="msg_1", sender_id="alice", content="hi", meta={"k": 1}, client_msg_id="c1"
    )


@pytest.mark.parametrize("content", ["", " ", "\n\t  "])
def test_send_refuses_empty_content(content: str) -> None:
    with pytest.raises(ValidationError) as info:
        decide_send("alice", SendMessage(content=content), "msg_1")
    assert info.value.field == "content"
    assert info.value.code == "VALIDATION_ERROR"


def test_send_accepts_content_of_exactly_the_limit() -> None:
    content = "x" * MAX_CONTENT_CHARS
    assert decide_send("alice", SendMessage(content=content), "msg_1").content == content


def test_send_refuses_content_over_the_limit_as_too_long() -> None:
    with pytest.raises(MessageTooLong) as info:
        decide_send("alice", SendMessage(content="x" * (MAX_CONTENT_CHARS + 1)), "msg_1")
    assert (info.value.code, info.value.status, info.value.field) == ("MESSAGE_TOO_LONG", 400, "content")


def test_send_limit_counts_characters_not_bytes() -> None:
    content = "é" * MAX_CONTENT_CHARS  # 2 bytes each in UTF-8
    assert decide_send("alice", SendMessage(content=content), "msg_1").content == content


def test_idempotency_key_is_none_without_a_client_msg_id() -> None:
    assert send_idempotency_key("alice", None) is None


@settings(max_examples=100, deadline=None)
@given(a=tricky_ids, b=tricky_ids, x=tricky_ids, y=tricky_ids)
@example(a="a:b", b="a", x="c", y="b:c")
def test_idempotency_key_is_one_per_sender_and_client_msg_id(a: str, b: str, x: str, y: str) -> None:
    # User ids may contain ':' (the API only forbids whitespace and '/'), so a retry of one sender must
    # never match another sender's message.
    same = (a, x) == (b, y)
    assert (send_idempotency_key(a, x) == send_idempotency_key(b, y)) == same


def test_a_retry_with_the_same_body_is_accepted() -> None:
    first = decide_send("alice", SendMessage(content="hi", meta={"k": [1, 2]}, client_msg_id="c1"), "msg_1")
    check_retry(first, SendMessage(content="hi", meta={"k": [1, 2]}, client_msg_id="c1"))


@pytest.mark.parametrize("change", [{"content": "ho"}, {"meta": {"k": 2}}, {"meta": None}, {"thread_id": "msg_0"}])
def test_a_retry_with_another_body_is_refused_as_a_reused_key(change: dict[str, object]) -> None:
    cmd = SendMessage(content="hi", meta={"k": 1}, client_msg_id="c1")
    first = decide_send("alice", cmd, "msg_1")
    with pytest.raises(IdempotencyKeyReused) as info:
        check_retry(first, msgspec.structs.replace(cmd, **change))
    assert (info.value.code, info.value.status, info.value.field) == ("IDEMPOTENCY_KEY_REUSED", 409, "client_msg_id")


# --- acks.decide_ack -----------------------------------------------------------------------------


def test_ack_past_the_room_end_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        decide_ack("room_1", 6, room_last_seq=5, acked_seq=0)
    assert info.value.field == "seq"


def test_ack_forward_records_the_new_position() -> None:
    assert decide_ack("room_1", 4, room_last_seq=5, acked_seq=2) == [AckRecorded(room_id="room_1", seq=4)]


@pytest.mark.parametrize("seq", [0, 2, 3])
def test_ack_at_or_below_the_acked_position_records_nothing(seq: int) -> None:
    assert decide_ack("room_1", seq, room_last_seq=5, acked_seq=3) == []


@settings(max_examples=100, deadline=None)
@given(last=st.integers(0, 50), acks=st.lists(st.integers(0, 60), max_size=30))
def test_acked_position_never_moves_backwards(last: int, acks: list[int]) -> None:
    position = 0
    for seq in acks:
        try:
            events = decide_ack("room_1", seq, room_last_seq=last, acked_seq=position)
        except ValidationError:
            assert seq > last
            continue
        for event in events:
            assert event.seq > position
            position = event.seq
    assert position == max([s for s in acks if s <= last], default=0)
