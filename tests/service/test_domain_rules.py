"""Rules that were tested only through HTTP, now as pure functions: edit, delete, react, read, thread roots, the
membership an append re-checks, roles, contacts, blocks and the last admin."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.api import EditMessage
from schemas.errors import (
    CannotBlockSelf,
    LastAdmin,
    MessageNotFound,
    MessageWasDeleted,
    NotAMember,
    NotMessageSender,
    NotRoomAdmin,
    RoomlogError,
    ValidationError,
)
from schemas.events import MessageDeleted, MessageEdited, ReactionAdded, ReactionRemoved, UserBlocked, UserUnblocked
from schemas.roles import RANK, TENANT_ROLES
from service.domain.acks import decide_ack, decide_read
from service.domain.authorization import allowed
from service.domain.messages import (
    MessageState,
    check_thread_root,
    decide_delete,
    decide_edit,
    decide_reaction,
    delete_action,
    membership_recheck,
)
from service.domain.roles import lesser_role, may_grant
from service.domain.rooms import Actor
from service.domain.users import check_role_change, decide_block, decide_unblock, sees_contacts

USERS = ("alice", "bob", "carol")
users = st.sampled_from(USERS)
tenant_roles = st.sampled_from(TENANT_ROLES)
room_roles = st.sampled_from((None, "member", "admin"))
actors = st.builds(Actor, user_id=users, role=tenant_roles)
messages = st.none() | st.builds(MessageState, sender_id=users, deleted=st.booleans())


@given(actor=actors, room_role=room_roles, message=messages, content=st.sampled_from(("new", " ", "x" * 4001)))
def test_only_a_member_sender_edits_a_live_message_with_valid_content(
    actor: Actor, room_role: str | None, message: MessageState | None, content: str
) -> None:
    try:
        event = decide_edit(actor, room_role, "m1", message, EditMessage(content=content))
    except RoomlogError as exc:
        if room_role is None:
            assert isinstance(exc, NotAMember)
        elif message is None:
            assert isinstance(exc, MessageNotFound)
        elif message.deleted:
            assert isinstance(exc, MessageWasDeleted)
        elif message.sender_id != actor.user_id:
            assert isinstance(exc, NotMessageSender)
        else:
            assert isinstance(exc, ValidationError)  # empty, or too long (MessageTooLong is one)
        return
    assert room_role is not None and message is not None and not message.deleted
    assert message.sender_id == actor.user_id and content == "new"
    assert event == MessageEdited(message_id="m1", edited_by=actor.user_id, content="new")


@given(actor=actors, room_role=room_roles, message=messages)
def test_deletion_is_the_senders_or_a_moderators_and_happens_once(
    actor: Actor, room_role: str | None, message: MessageState | None
) -> None:
    # One's own message is `message.delete` (members), anyone else's `message.moderate` (admins).
    may = [allowed(a, actor.role, room_role) for a in ("message.delete", "message.moderate")]
    try:
        events = decide_delete(actor, room_role, "m1", message)
    except RoomlogError as exc:
        if message is None:
            # Only someone who could delete a message here learns that this one does not exist.
            assert isinstance(exc, MessageNotFound) is any(may)
        else:
            assert not allowed(delete_action(actor, message), actor.role, room_role)
            assert isinstance(exc, NotAMember | NotRoomAdmin)
        return
    assert message is not None and allowed(delete_action(actor, message), actor.role, room_role)
    assert events == ([] if message.deleted else [MessageDeleted(message_id="m1", deleted_by=actor.user_id)])


@given(actor=actors, room_role=room_roles, message=messages, add=st.booleans(), reacted=st.booleans())
def test_reactions_are_a_set_on_live_messages_of_members(
    actor: Actor, room_role: str | None, message: MessageState | None, add: bool, reacted: bool
) -> None:
    try:
        events = decide_reaction(actor, room_role, "m1", message, "👍", add=add, reacted=reacted)
    except RoomlogError as exc:
        assert room_role is None or message is None or message.deleted, exc
        return
    assert room_role is not None and message is not None and not message.deleted
    if add == reacted:
        assert events == []
    else:
        kind = ReactionAdded if add else ReactionRemoved
        assert events == [kind(message_id="m1", user_id=actor.user_id, emoji="👍")]


@given(actor=actors, room_role=room_roles, sender=users)
def test_the_append_rechecks_the_room_role_the_decision_relied_on(
    actor: Actor, room_role: str | None, sender: str
) -> None:
    action = delete_action(actor, MessageState(sender_id=sender, deleted=False))
    recheck = membership_recheck(action, actor, room_role)
    if allowed(action, actor.role, None) or room_role is None:
        assert recheck is None  # the tenant role alone allowed it (or nothing did): no room role to re-check
    elif sender == actor.user_id:
        assert recheck == "member"
    else:
        assert recheck == "admin"


@given(seq=st.integers(0, 20), last=st.integers(0, 20), position=st.integers(0, 20))
def test_acks_and_reads_only_move_forward_and_never_past_the_end(seq: int, last: int, position: int) -> None:
    for decide in (decide_ack, decide_read):
        kwargs = {"room_last_seq": last, ("acked_seq" if decide is decide_ack else "read_seq"): position}
        if seq > last:
            with pytest.raises(ValidationError):
                decide("r1", seq, **kwargs)  # type: ignore[operator]
            continue
        events = decide("r1", seq, **kwargs)  # type: ignore[operator]
        assert len(events) == (1 if seq > position else 0)


def test_a_reply_needs_a_top_level_root_in_the_room() -> None:
    check_thread_root("m1", None, found=True)
    with pytest.raises(MessageNotFound):
        check_thread_root("m1", None, found=False)
    with pytest.raises(ValidationError, match="itself a reply"):
        check_thread_root("m2", "m1", found=True)


@given(granter=st.sampled_from((*TENANT_ROLES, "platform")), role=tenant_roles)
def test_no_one_grants_a_role_above_their_own(granter: str, role: str) -> None:
    assert may_grant(granter, role) is (RANK[role] <= RANK[granter])  # type: ignore[arg-type, index]


@given(a=tenant_roles, b=tenant_roles)
def test_a_key_caps_the_role_of_the_user_it_acts_for(a: str, b: str) -> None:
    lesser = lesser_role(a, b)  # type: ignore[arg-type]
    assert lesser in (a, b) and RANK[lesser] == min(RANK[a], RANK[b])  # type: ignore[index]


@given(role=st.sampled_from((*TENANT_ROLES, "platform")), viewer=users, user=users)
def test_contacts_are_for_admins_and_oneself(role: str, viewer: str, user: str) -> None:
    assert sees_contacts(role, viewer, user) is (role in ("admin", "platform") or viewer == user)


def test_blocking_is_a_set_and_never_of_oneself() -> None:
    assert decide_block("alice", "bob", blocked=False) == [UserBlocked(user_id="bob")]
    assert decide_block("alice", "bob", blocked=True) == []
    with pytest.raises(CannotBlockSelf):
        decide_block("alice", "alice", blocked=False)
    assert decide_unblock("bob", blocked=True) == [UserUnblocked(user_id="bob")]
    assert decide_unblock("bob", blocked=False) == []


@given(admins=st.lists(users, unique=True, max_size=3), target=users,
       new_role=st.sampled_from((None, *TENANT_ROLES)))
def test_the_last_admin_is_never_demoted(admins: list[str], target: str, new_role: str | None) -> None:
    demotes_last = new_role not in (None, "admin") and admins == [target]
    if demotes_last:
        with pytest.raises(LastAdmin):
            check_role_change(admins, target, new_role)
    else:
        check_role_change(admins, target, new_role)
