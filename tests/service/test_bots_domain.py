"""service/domain/bots.py: which bots a message triggers, and that no bot's message ever triggers one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.bots import Trigger, text_mentions, triggered

ALL = ("mention", "dm", "all_messages")


def test_text_mentions_find_names_without_trailing_punctuation_and_ignore_emails() -> None:
    assert {"aurora", "bot-1"} <= text_mentions("hey @Aurora, ask @bot-1: now")
    assert "aurora," in text_mentions("@Aurora,")  # a user id may end in a comma: both readings are kept
    assert text_mentions("mail me at x@aurora.io") == set()


def test_a_mention_triggers_a_member_bot_once_with_the_first_reason_that_applies() -> None:
    found = triggered(sender_id="alice", content="@aurora help", mentions=None, room_type="dm",
                      member_ids={"alice", "aurora"}, bots={"aurora": ALL}, bot_users={"aurora"})
    assert found == [Trigger("aurora", "mention")]


def test_the_mentions_field_counts_like_a_text_mention() -> None:
    found = triggered(sender_id="alice", content="help", mentions=["aurora"], room_type="group",
                      member_ids={"alice", "aurora"}, bots={"aurora": ("mention",)}, bot_users={"aurora"})
    assert found == [Trigger("aurora", "mention")]


def test_a_dm_triggers_its_other_member_and_all_messages_any_message() -> None:
    bots = {"dmbot": ("dm",), "listener": ("all_messages",), "quiet": ("mention",)}
    members = {"alice", "dmbot", "listener", "quiet"}
    assert triggered(sender_id="alice", content="hi", mentions=None, room_type="dm", member_ids=members,
                     bots=bots, bot_users=set(bots)) == [Trigger("dmbot", "dm"), Trigger("listener", "all_messages")]
    assert triggered(sender_id="alice", content="hi", mentions=None, room_type="group", member_ids=members,
                     bots=bots, bot_users=set(bots)) == [Trigger("listener", "all_messages")]


def test_a_bot_that_is_not_a_member_is_not_triggered() -> None:
    assert triggered(sender_id="alice", content="@aurora", mentions=None, room_type="group",
                     member_ids={"alice"}, bots={"aurora": ALL}, bot_users={"aurora"}) == []


ids = st.sampled_from(("alice", "bob", "b1", "b2", "b3"))


@settings(max_examples=60, deadline=None)
@given(sender=st.sampled_from(("b1", "b2", "b3")), content=st.lists(ids.map("@{}".format)).map(" ".join),
       mentions=st.none() | st.lists(ids), room_type=st.sampled_from(("dm", "group", "channel")),
       members=st.sets(ids), active=st.dictionaries(st.sampled_from(("b1", "b2")), st.sets(st.sampled_from(ALL))))
def test_a_message_of_any_bot_triggers_no_bot(
    sender: str, content: str, mentions: list[str] | None, room_type: str, members: set[str],
    active: dict[str, set[str]],
) -> None:
    # b3 stands for a deleted bot (or a user with the role bot): still a bot, so still silent.
    assert triggered(sender_id=sender, content=content, mentions=mentions, room_type=room_type,
                     member_ids=members | {sender}, bots=active, bot_users={"b1", "b2", "b3"}) == []


@settings(max_examples=60, deadline=None)
@given(content=st.lists(ids.map("@{}".format)).map(" ".join), mentions=st.none() | st.lists(ids),
       room_type=st.sampled_from(("dm", "group")), members=st.sets(ids),
       active=st.dictionaries(st.sampled_from(("b1", "b2", "b3")), st.sets(st.sampled_from(ALL), min_size=1)))
def test_a_human_message_triggers_each_member_bot_at_most_once(
    content: str, mentions: list[str] | None, room_type: str, members: set[str], active: dict[str, set[str]],
) -> None:
    found = triggered(sender_id="alice", content=content, mentions=mentions, room_type=room_type,
                      member_ids=members | {"alice"}, bots=active, bot_users=set(active))
    bot_ids = [t.bot_id for t in found]
    assert len(bot_ids) == len(set(bot_ids))
    assert set(bot_ids) <= members & set(active)
    assert all(t.reason in active[t.bot_id] for t in found)
    assert {b for b in members & set(active) if "all_messages" in active[b]} <= set(bot_ids)
