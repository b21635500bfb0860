"""Which bots a message triggers: a pure rule, the one place that keeps bots from answering each other.

No loops: a message whose sender is a bot — any registered bot, deleted ones included, or any user with the
role `bot` — triggers nothing. A bot's reply is an ordinary message with `sender_id` = the bot, so it is
never a trigger, whichever bot it mentions; two bots mentioning each other exchange at most one message each
per human message. Each bot gets at most one delivery per message, for the first of its triggers that applies
(mention, then dm, then all_messages), and only in rooms it is an active member of.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from schemas.bots import BotTrigger

# `@name` not inside a word or an e-mail address: the name runs to the next whitespace.
_MENTION = re.compile(r"(?<![\w@])@([^\s@]+)")
_TRAILING = ".,;:!?)]}'\""
_ORDER: tuple[BotTrigger, ...] = ("mention", "dm", "all_messages")


@dataclass(frozen=True, slots=True)
class Trigger:
    """One delivery to make: `bot_id` is told about the message because of `reason`."""

    bot_id: str
    reason: BotTrigger


def text_mentions(content: str) -> set[str]:
    """The user ids `@mentioned` in a message's text, case-folded (trailing punctuation is not part of a name)."""
    found: set[str] = set()
    for match in _MENTION.finditer(content):
        name = match.group(1)
        found.add(name.casefold())
        found.add(name.rstrip(_TRAILING).casefold())
    found.discard("")
    return found


def triggered(
    *, sender_id: str, content: str, mentions: Iterable[str] | None, room_type: str, member_ids: Collection[str],
    bots: Mapping[str, Collection[str]], bot_users: Collection[str],
) -> list[Trigger]:
    """The deliveries a message calls for, in bot id order.

    `bots` maps each active bot to its triggers; `bot_users` are every user id that is a bot (active, deleted,
    or with the role), whose messages trigger nothing.
    """
    if sender_id in bot_users or sender_id in bots:
        return []
    named = text_mentions(content) | {m.casefold() for m in mentions or ()}
    out: list[Trigger] = []
    for bot_id in sorted(bots):
        if bot_id not in member_ids:
            continue
        reason = _reason(bots[bot_id], mentioned=bot_id.casefold() in named, dm=room_type == "dm")
        if reason is not None:
            out.append(Trigger(bot_id, reason))
    return out


def _reason(triggers: Collection[str], *, mentioned: bool, dm: bool) -> BotTrigger | None:
    applies = {"mention": mentioned, "dm": dm, "all_messages": True}
    return next((t for t in _ORDER if t in triggers and applies[t]), None)
