"""projections/replay.py: rebuild the read models from the log, verify them against the live ones, swap them in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from eventstore.append import Appender
from projections.guards import UniqueRoomKey
from projections.inline import INLINE_PROJECTIONS, InlineProjections
from projections.replay import ALL_PROJECTIONS, ReplayProgress, projection_by_name, replay, split_by_cost
from projections.streams import deliveries_stream
from schemas.events import (
    DeliveryDiscarded,
    DeliveryFailed,
    DeliveryRetried,
    Event,
    EventMetadata,
    MemberJoined,
    MessageSent,
    RoomCreated,
    SlaClockStarted,
    SlaClockStopped,
    SlaClockUpdated,
)
from schemas.media import SetMediaLimits
from service.commands.media_limits import set_limits
from service.consumers.sla_timer import BreachTimer
from service.domain.rooms import dm_key
from service.identity.auth import Principal
from service.identity.ids import new_id
from service.runtime import Runtime
from tests.conftest import Tenant, create_database, database_name
from tests.service.test_search import caught_up

LIVE_TABLES = tuple(table for projection in INLINE_PROJECTIONS for table in projection.tables)


async def dump_tables(pool: asyncpg.Pool) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every inline projection table, in a total order."""
    return {
        table: [tuple(r) for r in await pool.fetch(f"SELECT * FROM {table} AS t ORDER BY t::text")]
        for table in LIVE_TABLES
    }


async def _ok(response: httpx.Response) -> dict[str, object]:
    assert response.status_code < 300, response.text
    body: dict[str, object] = response.json() if response.content else {}
    return body


async def _varied_history(client: httpx.AsyncClient, tenant: Tenant) -> str:
    """Rooms, renames, metadata, member adds/removes/rejoins, messages, edits, deletions, reactions and acks;
    returns the group room's id."""
    alice, bob, carol, dave = (tenant.as_user(u) for u in ("alice", "bob", "carol", "dave"))
    room = await _ok(await client.post(
        "/rooms", json={"type": "group", "members": ["bob", "carol"], "name": "one", "metadata": {"a": 1}},
        headers=alice,
    ))
    rid = str(room["room_id"])
    await _ok(await client.patch(f"/rooms/{rid}", json={"name": "two"}, headers=alice))
    await _ok(await client.patch(f"/rooms/{rid}", json={"metadata": {"b": [1, 2]}}, headers=alice))
    await _ok(await client.post(f"/rooms/{rid}/members", json={"user_ids": ["dave"]}, headers=alice))
    await _ok(await client.delete(f"/rooms/{rid}/members/carol", headers=alice))
    # The second (alice, "c1", 0) is a client retry: the same message again, answered as a replay.
    for who, cmid, i in [(alice, "c1", 0), (bob, None, 1), (dave, "c2", 2), (alice, "c1", 0), (bob, "c3", 4)]:
        await _ok(await client.post(f"/rooms/{rid}/messages",
                                    json={"content": f"m{i}", "meta": {"i": i}, "client_msg_id": cmid}, headers=who))
    sent = [m["message_id"] for m in (await client.get(f"/rooms/{rid}/messages", headers=alice)).json()]
    await _ok(await client.patch(f"/rooms/{rid}/messages/{sent[0]}", json={"content": "m0 again"}, headers=alice))
    await _ok(await client.patch(f"/rooms/{rid}/messages/{sent[0]}", json={"content": "m0 last"}, headers=alice))
    for who, emoji in [(bob, "👍"), (dave, "👍"), (alice, ":tada:"), (bob, "🎉")]:
        await _ok(await client.post(f"/rooms/{rid}/messages/{sent[0]}/reactions", json={"emoji": emoji}, headers=who))
    await _ok(await client.delete(f"/rooms/{rid}/messages/{sent[0]}/reactions/%F0%9F%8E%89", headers=bob))
    await _ok(await client.post(f"/rooms/{rid}/messages/{sent[1]}/reactions", json={"emoji": "x"}, headers=alice))
    await _ok(await client.patch(f"/rooms/{rid}/messages/{sent[1]}", json={"content": "m1 edited"}, headers=bob))
    await _ok(await client.delete(f"/rooms/{rid}/messages/{sent[1]}", headers=bob))
    await _ok(await client.delete(f"/rooms/{rid}/messages/{sent[2]}", headers=alice))  # moderated by the room admin
    for who, text in [(bob, "r1"), (alice, "r2")]:
        await _ok(await client.post(f"/rooms/{rid}/messages", json={"content": text, "thread_id": sent[0]},
                                    headers=who))
    await _ok(await client.delete(f"/rooms/{rid}/members/dave", headers=dave))
    await _ok(await client.post(f"/rooms/{rid}/members", json={"user_ids": ["carol"]}, headers=alice))
    await _ok(await client.post("/acks", json={"room_id": rid, "seq": 6}, headers=bob))
    await _ok(await client.post("/acks", json={"room_id": rid, "seq": 9}, headers=bob))
    await _ok(await client.post("/acks", json={"room_id": rid, "seq": 3}, headers=alice))
    await _ok(await client.post(f"/rooms/{rid}/read", json={"seq": 7}, headers=bob))  # read past the ack: both move
    await _ok(await client.post(f"/rooms/{rid}/read", json={"seq": 2}, headers=alice))
    for who, mentions in [(alice, ["bob"]), (bob, ["@room"]), (alice, ["carol", "@here"]), (bob, ["carol"])]:
        await _ok(await client.post(f"/rooms/{rid}/messages", json={"content": "@", "mentions": mentions},
                                    headers=who))
    last_seq = (await _ok(await client.get(f"/rooms/{rid}", headers=alice)))["last_seq"]
    await _ok(await client.post(f"/rooms/{rid}/read", json={"seq": int(str(last_seq)) - 2}, headers=carol))
    await _ok(await client.patch(f"/rooms/{rid}", json={"name": None}, headers=alice))
    dm = await _ok(await client.post("/rooms", json={"type": "dm", "members": ["bob"]}, headers=alice))
    await _ok(await client.post(f"/rooms/{dm['room_id']}/messages", json={"content": "psst"}, headers=bob))
    gone = await _ok(await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=alice))
    await _ok(await client.post(f"/rooms/{gone['room_id']}/messages", json={"content": "bye"}, headers=bob))
    await _ok(await client.delete(f"/rooms/{gone['room_id']}?scope=for_everyone", headers=alice))
    await _ok(await client.post("/rooms", json={"type": "channel", "members": ["carol", "dave"]}, headers=carol))
    for who, body in [(bob, {"status": "dnd", "status_text": "focus", "clear_after_minutes": 30}),
                      (carol, {"status": "offline"}), (bob, {"status": "online", "status_emoji": ":ok:"})]:
        await _ok(await client.put("/presence", json=body, headers=who))  # the latest choice wins
    await _support_history(client, tenant)
    await _bots_history(client, tenant)
    await _ticket_history(client, tenant)
    await _sla_history(client, tenant)
    return rid


async def _bots_history(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """Bots registered, changed, deleted and registered again."""
    admin = tenant.as_user("admin")
    hook = {"webhook_url": "http://127.0.0.1:9/bot", "secret": "s" * 32}
    for bot_id in ("aurora", "inside"):
        delivery = hook if bot_id == "aurora" else {"nats_subject": "bots.inside"}
        await _ok(await client.post("/bots", json={"user_id": bot_id, "display_name": bot_id, "delivery": delivery,
                                                   "triggers": ["mention"]}, headers=admin))
    await _ok(await client.patch("/bots/aurora", json={"triggers": ["dm", "mention"], "display_name": "Au"},
                                 headers=admin))
    await _ok(await client.delete("/bots/inside", headers=admin))
    await _ok(await client.post("/bots", json={"user_id": "inside", "display_name": "again", "delivery": hook,
                                               "triggers": ["all_messages"]}, headers=admin))


async def _sla_history(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """SLA configuration: calendars saved twice and deleted, policies created, reordered, changed, deleted."""
    admin = tenant.as_user("admin")
    body = {"name": "office", "timezone": "Europe/Berlin", "holidays": ["2026-12-25"],
            "periods": [{"day": "mon", "start": "09:00", "end": "17:00"}]}
    cal = (await _ok(await client.post("/support/sla/calendars", json=body, headers=admin)))["calendar_id"]
    await _ok(await client.put(f"/support/sla/calendars/{cal}", json={**body, "holidays": []}, headers=admin))
    spare = (await _ok(await client.post("/support/sla/calendars", json=body, headers=admin)))["calendar_id"]
    await _ok(await client.delete(f"/support/sla/calendars/{spare}", headers=admin))
    targets = {"first_response_minutes": 30, "resolution_minutes": 240}
    ids = [(await _ok(await client.post("/support/sla/policies", headers=admin, json={
        "name": name, "calendar_id": cal, "targets": targets, "conditions": {"priority": [name]}})))["policy_id"]
        for name in ("urgent", "high", "low")]
    await _ok(await client.put("/support/sla/policy-order", json={"policy_ids": ids[::-1]}, headers=admin))
    await _ok(await client.put(f"/support/sla/policies/{ids[0]}", headers=admin,
                               json={"name": "urgent 24/7", "targets": targets, "at_risk_percent": 50}))
    await _ok(await client.delete(f"/support/sla/policies/{ids[1]}", headers=admin))


async def _support_history(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """The support desk: agents, a team, sessions assigned, held, resumed, transferred, escalated, ended, rated;
    its settings set twice."""
    admin = tenant.as_user("admin")
    for user_id, role in [("ag1", "agent"), ("ag2", "agent"), ("cu1", "customer"), ("cu2", "customer")]:
        await _ok(await client.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                                    headers=admin))
    for agent, cap in [("ag1", 1), ("ag2", 2)]:
        await _ok(await client.put(f"/support/agents/{agent}", json={"max_sessions": cap, "skills": ["billing"]},
                                   headers=admin))
    await _ok(await client.put("/support/agents/ag1/status", json={"status": "available"}, headers=admin))
    await _ok(await client.post("/support/teams", json={"team_id": "esc", "name": "Escalations", "members": ["ag2"],
                                                        "escalation_level": "tier2"}, headers=admin))
    first = await _ok(await client.post("/support/sessions", json={"initial_message": "help", "context": {"o": 1}},
                                        headers=tenant.as_user("cu1")))
    second = await _ok(await client.post("/support/sessions", json={"priority": "urgent"},
                                         headers=tenant.as_user("cu2")))
    one, two = first["session_id"], second["session_id"]
    await _ok(await client.post(f"/support/sessions/{one}/hold", headers=admin))
    await _ok(await client.post(f"/support/sessions/{one}/resume", headers=admin))
    await _ok(await client.put("/support/agents/ag2/status", json={"status": "available"}, headers=admin))
    await _ok(await client.post(f"/support/sessions/{one}/transfer", json={"target_type": "agent", "target_id": "ag2",
                                                                          "notes": "internal"}, headers=admin))
    await _ok(await client.post(f"/support/sessions/{two}/escalate", json={"level": "tier2"}, headers=admin))
    await _ok(await client.patch("/support/teams/esc", json={"required_skills": ["billing"]}, headers=admin))
    await _ok(await client.post(f"/support/sessions/{one}/end", json={"resolution": "resolved", "tags": ["t"]},
                                headers=admin))
    await _ok(await client.post(f"/support/sessions/{one}/rating", json={"score": 4}, headers=tenant.as_user("cu1")))
    for refuse in (True, False):  # the desk's settings: the latest one wins
        await _ok(await client.put("/support/settings", json={"refuse_without_agents": refuse}, headers=admin))
    # The knowledge base: articles written, changed, published, one deleted (the index keeps its tombstone).
    kept = await _ok(await client.post("/support/kb/articles", json={"title": "Refunds", "body": "How to get one",
                                                                      "locale": "en"}, headers=admin))
    gone = await _ok(await client.post("/support/kb/articles", json={"title": "Old", "body": "x", "locale": "de"},
                                       headers=admin))
    await _ok(await client.put(f"/support/kb/articles/{kept['id']}", json={"status": "published", "tags": ["money"]},
                               headers=admin))
    await _ok(await client.delete(f"/support/kb/articles/{gone['id']}", headers=admin))
    # Quick actions: recorded on the session; store credit in the customer's ledger.
    await _ok(await client.post("/support/quick-actions/action_add_credit/execute", headers=admin,
                                json={"session_id": two, "context": {"amount": "12.50"}}))


async def _ticket_history(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """Tickets: filed (one from a session), assigned, commented by both sides (a reopen), noted, escalated, solved,
    closed, followed up; the auto-close days set."""
    admin, customer = tenant.as_user("admin"), tenant.as_user("cu1")
    # An SLA policy with a next-response target, so tickets record clocks of every metric as they change.
    policy = {"name": "all", "targets": {"first_response_minutes": 30, "resolution_minutes": 600,
                                         "next_response_minutes": 20}}
    policy_id = (await _ok(await client.post("/support/sla/policies", json=policy, headers=admin)))["policy_id"]
    first = await _ok(await client.post("/support/tickets", json={
        "subject": "Refund", "description": "Where is it?", "tags": ["refund"], "category": "billing",
        "related_order_id": "ord_1", "attachments": [{"media_id": "m1"}]}, headers=customer))
    one = first["id"]
    await _ok(await client.put(f"/support/tickets/{one}", json={"assigned_to": "ag1", "priority": "high"},
                               headers=admin))
    await _ok(await client.post(f"/support/tickets/{one}/comments", json={"content": "On it"}, headers=admin))
    await _ok(await client.put(f"/support/tickets/{one}", json={"status": "pending"}, headers=admin))
    await _ok(await client.post(f"/support/tickets/{one}/comments", json={"content": "Still?"}, headers=customer))
    await _ok(await client.post(f"/support/tickets/{one}/notes", json={"content": "internal",
                                                                       "mention_agent_ids": ["ag2"]}, headers=admin))
    await _ok(await client.post(f"/support/tickets/{one}/escalate", json={"escalation_type": "tier_2",
                                                                          "notes": "internal"}, headers=admin))
    await _ok(await client.post("/support/quick-actions/action_add_tag/execute",  # recorded on the ticket
                                json={"ticket_id": one, "context": {"tag": "quick"}}, headers=admin))
    for status in ("solved", "closed"):
        await _ok(await client.put(f"/support/tickets/{one}", json={"status": status}, headers=admin))
    await _ok(await client.post("/support/tickets", json={"subject": "Again", "description": "d",
                                                          "follow_up_of": one}, headers=customer))
    rows = await _ok(await client.get("/support/sessions", headers=admin))
    assert isinstance(rows, list)
    from_session = await _ok(await client.post(f"/support/sessions/{rows[0]['session_id']}/ticket", json={},
                                               headers=admin))
    await _ok(await client.put(f"/support/sla/policies/{policy_id}", json={**policy, "at_risk_percent": 50},
                               headers=admin))
    await _ok(await client.post(f"/support/tickets/{from_session['id']}/sla/reapply", headers=admin))
    await _ok(await client.delete(f"/support/sla/policies/{policy_id}", headers=admin))  # tickets keep theirs
    await _ok(await client.put("/support/settings", json={"refuse_without_agents": False,
                                                         "ticket_auto_close_days": 7}, headers=admin))


@pytest.fixture
async def history(client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, runtime: Runtime) -> str:
    """A tenant with a varied history behind it; the id of its group room."""
    room_id = await _varied_history(client, tenant)
    # The platform admin's media limits for the tenant, set twice (the newest wins).
    for cmd in (SetMediaLimits(max_bytes=10, allowed_types=["text/csv"]), SetMediaLimits(quota_bytes=0)):
        await set_limits(runtime, Principal(tenant_id="", user_id="platform", role="platform"), tenant.tenant_id, cmd)
    await _sla_clock_history(runtime, tenant)
    return room_id


async def _sla_clock_history(runtime: Runtime, tenant: Tenant) -> None:
    """SLA clocks: one moved and then at risk and breached (by a timer on a fake clock), one stopped."""
    soon = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)  # the live timer leaves these alone
    meta = EventMetadata(tenant_id=tenant.tenant_id)
    moved, stopped = f"sla-clock:{tenant.tenant_id}:moved", f"sla-clock:{tenant.tenant_id}:stopped"
    for stream in (moved, stopped):
        await runtime.appender.append(stream, [SlaClockStarted(clock_id="c", metric="resolution", due_at=soon,
                                                               at_risk_at=soon - timedelta(minutes=5))],
                                      tenant_id=tenant.tenant_id, metadata=meta, create_stream=True)
    await runtime.appender.append(moved, [SlaClockUpdated(clock_id="c", metric="resolution", due_at=soon + timedelta(
        hours=1), at_risk_at=soon)], tenant_id=tenant.tenant_id, metadata=meta)
    await runtime.appender.append(stopped, [SlaClockStopped(clock_id="c", metric="resolution")],
                                  tenant_id=tenant.tenant_id, metadata=meta)
    timer = BreachTimer(runtime.pool, runtime.appender, "unused", now=lambda: soon + timedelta(days=1))
    assert await timer.record(moved, "c") == 2
    # A ticket's first response breached (a timer far ahead), which its `sla_status` records.
    ticket = await runtime.pool.fetchval("SELECT ticket_id FROM support_tickets WHERE tenant_id = $1"
                                         " AND first_response_at IS NULL ORDER BY number LIMIT 1", tenant.tenant_id)
    assert await timer.record(ticket, "first_response:1") == 2
    assert await runtime.pool.fetchval("SELECT sla_status FROM support_tickets WHERE ticket_id = $1",
                                       ticket) == "breached"


async def test_replay_after_a_varied_history_finds_no_differences_and_swaps(
    pool: asyncpg.Pool, history: str
) -> None:
    report = await replay(pool, verify=True)
    assert report.differences == {table: 0 for table in LIVE_TABLES}
    assert report.swapped
    assert report.projections == [p.name for p in INLINE_PROJECTIONS]


async def test_replay_leaves_the_live_tables_as_they_were(pool: asyncpg.Pool, history: str) -> None:
    before = await dump_tables(pool)
    await replay(pool, verify=True)
    assert await dump_tables(pool) == before
    assert before["messages"], "the history should have left messages to compare"
    assert len(before["support_tickets"]) >= 3 and before["support_ticket_entries"], "and tickets with timelines"


async def test_a_parallel_replay_of_every_projection_in_small_batches_leaves_the_tables_as_they_were(
    pool: asyncpg.Pool, history: str
) -> None:
    before = await dump_tables(pool)
    report = await replay(pool, ALL_PROJECTIONS, verify=True, parallel=2, batch_size=9)
    assert report.swapped and set(report.differences.values()) == {0}
    assert await dump_tables(pool) == before


def test_parallel_groups_split_the_measured_cost_and_keep_the_given_order() -> None:
    names = ["rooms", "members", "messages", "mentions", "search", "receipts"]
    projections = [projection_by_name(n) for n in names]
    costs = {"messages": 17.0, "search": 9.0, "receipts": 1.2, "mentions": 0.5, "members": 0.2, "rooms": 0.1}
    groups = [[p.name for p in g] for g in split_by_cost(projections, costs, 2)]
    assert sorted(groups) == [["messages"], ["rooms", "members", "mentions", "search", "receipts"]]
    assert [[p.name for p in g] for g in split_by_cost(projections, costs, 1)] == [names]
    # More connections than projections: a group each, none empty.
    assert len(split_by_cost(projections[:2], costs, 4)) == 2


async def test_replay_counts_every_event_of_the_log(pool: asyncpg.Pool, history: str) -> None:
    progress: list[ReplayProgress] = []
    report = await replay(pool, on_progress=progress.append)
    assert report.events == await pool.fetchval("SELECT count(*) FROM events")
    assert progress and progress[-1].events == report.events


async def test_replay_of_one_projection_rebuilds_only_its_tables(pool: asyncpg.Pool, history: str) -> None:
    report = await replay(pool, [projection_by_name("messages")], verify=True)
    assert report.projections == ["messages"]
    assert report.differences == {"messages": 0, "reactions": 0, "room_activity": 0, "message_counts": 0,
                                  "read_marks": 0}
    assert report.swapped


async def test_replay_rebuilds_the_support_analytics_facts_and_rollup_identically(
    pool: asyncpg.Pool, history: str, tenant: Tenant
) -> None:
    await caught_up(pool, "support_analytics")
    kinds = await pool.fetch("SELECT kind, count(*) AS n FROM support_analytics WHERE tenant_id = $1 GROUP BY kind",
                             tenant.tenant_id)
    assert {r["kind"] for r in kinds} == {"session", "ticket"}, "the history should have left facts to compare"
    dims = await pool.fetch("SELECT DISTINCT dim FROM support_analytics_hourly WHERE tenant_id = $1", tenant.tenant_id)
    assert {r["dim"] for r in dims} >= {"all", "agent"}, "and rollup rows"
    report = await replay(pool, [projection_by_name("support_analytics")], verify=True)
    assert report.differences == {"support_analytics": 0, "support_analytics_hourly": 0,
                                  "support_analytics_daily": 0} and report.swapped


async def test_verify_counts_a_tampered_row_and_the_swap_repairs_it(
    pool: asyncpg.Pool, client: httpx.AsyncClient, tenant: Tenant, history: str
) -> None:
    [message] = (await client.get(f"/rooms/{history}/messages?limit=1", headers=tenant.as_user("alice"))).json()
    await pool.execute("UPDATE messages SET content = 'x' WHERE message_id = $1", message["message_id"])
    report = await replay(pool, verify=True)
    assert report.differences["messages"] > 0
    assert report.differences["rooms"] == 0
    assert await pool.fetchval("SELECT content FROM messages WHERE message_id = $1", message["message_id"]) \
        == message["content"]


async def test_replay_without_swap_leaves_the_live_tables_alone(
    pool: asyncpg.Pool, client: httpx.AsyncClient, tenant: Tenant, history: str
) -> None:
    [message] = (await client.get(f"/rooms/{history}/messages?limit=1", headers=tenant.as_user("alice"))).json()
    await pool.execute("UPDATE messages SET content = 'x' WHERE message_id = $1", message["message_id"])
    try:
        report = await replay(pool, verify=True, swap=False)
        assert report.differences["messages"] > 0
        assert not report.swapped
        assert await pool.fetchval("SELECT content FROM messages WHERE message_id = $1", message["message_id"]) == "x"
    finally:
        await replay(pool)  # repair, for the tests that share this database


async def test_appends_during_a_replay_are_in_the_swapped_in_tables(
    pool: asyncpg.Pool, client: httpx.AsyncClient, tenant: Tenant, history: str
) -> None:
    senders = [tenant.as_user(u) for u in ("alice", "bob", "carol")]
    sent: list[dict[str, object]] = []
    first_sent = asyncio.Event()
    stop = asyncio.Event()

    async def keep_sending() -> None:
        i = 0
        while not stop.is_set() or i < 5:
            response = await client.post(f"/rooms/{history}/messages", json={"content": f"during {i}"},
                                         headers=senders[i % 3])
            sent.append(await _ok(response))
            first_sent.set()
            i += 1
            await asyncio.sleep(0.03)  # stay well inside the per-user send rate limit

    task = asyncio.create_task(keep_sending())
    try:
        await asyncio.wait_for(first_sent.wait(), 10)
        during = len(sent)
        # Small batches make the replay take many steps, so the sends interleave with it.
        report = await replay(pool, verify=True, batch_size=5)
        during = len(sent) - during
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert during > 0, "no send overlapped the replay"
    assert report.swapped
    assert report.differences == {table: 0 for table in LIVE_TABLES}
    ids = [m["message_id"] for m in sent]
    stored = await pool.fetchval("SELECT count(*) FROM messages WHERE message_id = ANY($1::text[])", ids)
    assert stored == len(ids)
    seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM messages WHERE room_id = $1 ORDER BY seq", history)]
    assert seqs == sorted(set(seqs))
    last_seq = await pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", history)
    event_seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM events WHERE stream_id = $1 ORDER BY seq",
                                                     history)]
    assert event_seqs == list(range(1, last_seq + 1))


async def test_appends_right_after_a_swap_succeed(
    pool: asyncpg.Pool, client: httpx.AsyncClient, tenant: Tenant, history: str
) -> None:
    """Every pooled connection has statements prepared against the old tables; they must still work."""
    await replay(pool)
    members = [tenant.as_user(u) for u in ("alice", "bob", "carol")]
    responses = await asyncio.gather(
        *(client.post(f"/rooms/{history}/messages", json={"content": f"after {i}"}, headers=members[i % 3])
          for i in range(15))
    )
    assert [r.status_code for r in responses] == [201] * 15
    listed = await client.get(f"/rooms/{history}/messages?limit=100", headers=members[0])
    assert listed.status_code == 200
    assert {f"after {i}" for i in range(15)} <= {m["content"] for m in listed.json()}



@pytest.fixture
async def pristine_pool(pg_server_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a freshly migrated database of its own, so the test knows every hole in its log."""
    url = await create_database(pg_server_url, "roomlog_replay")
    name = database_name(url)
    admin = await asyncpg.connect(pg_server_url)
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            yield pool
        finally:
            await pool.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_replay_passes_a_rolled_back_hole_before_holding_appends_out(pristine_pool: asyncpg.Pool) -> None:
    """The bulk of the log must be replayed while appends go on, also past a position a rollback left empty.

    A hole seen for the first time is not final yet, so the reader must look again rather than take it for
    the end of the log. Here the first batch rolls back, so the log starts with a hole; batch_size=1 makes
    any hole the first thing a read sees, wherever the race put it.
    """
    appender = Appender(pristine_pool, InlineProjections(), writers=1)
    appender.start()
    try:
        t, key = "tn_pristine", dm_key("alice", "bob")
        meta = EventMetadata(tenant_id=t, actor="alice")
        rooms = [new_id("room") for _ in range(2)]
        # Two creates of the same DM: the loser's transaction rolls back and leaves its positions empty.
        await asyncio.gather(
            *(appender.append(r, [RoomCreated(room_id=r, room_type="dm", created_by="alice", unique_key=key),
                                  MemberJoined(user_id="alice", role="admin", added_by="alice")],
                              tenant_id=t, metadata=meta, create_stream=True, guard=UniqueRoomKey(t, key))
              for r in rooms),
            return_exceptions=True,
        )
        room = await pristine_pool.fetchval("SELECT room_id FROM rooms WHERE unique_key = $1", key)
        for i in range(10):
            await appender.append(room, [MessageSent(message_id=new_id("msg"), sender_id="alice", content=str(i))],
                                  tenant_id=t, metadata=meta)
    finally:
        await appender.stop()
    positions = {r["position"] for r in await pristine_pool.fetch("SELECT position FROM events")}
    holes = set(range(1, max(positions))) - positions
    assert holes, "the DM race should have left a hole in the log"

    progress: list[ReplayProgress] = []
    report = await replay(pristine_pool, verify=True, batch_size=1, on_progress=progress.append)
    assert report.differences == {table: 0 for table in LIVE_TABLES}
    unlocked = max((p.position for p in progress[:-1]), default=0)  # the last report comes after the lock
    assert unlocked > max(holes), f"replay held appends out from position {unlocked} on; holes at {sorted(holes)}"


@pytest.mark.parametrize("batch_size", [5000, 3])
async def test_replay_folds_a_rooms_updates_and_deletion_set_based_as_the_append_applies_them_one_by_one(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, batch_size: int
) -> None:
    alice = tenant.as_user("alice")
    room = await _ok(await client.post("/rooms", json={"type": "group", "members": ["bob"], "name": "first",
                                                        "settings": {"message_retention_days": 3}}, headers=alice))
    rid = room["room_id"]
    for body in [
        {"name": "second", "description": "d1"},
        {"settings": {"who_can_post": "admins", "message_retention_days": 9}},
        {"name": None, "metadata": {"k": [1]}},
        {"display_name": "shown", "description": None},
        {"settings": {"who_can_post": "all_members"}},  # retention back to none
        {"metadata": None, "display_name": "shown again"},
    ]:
        await _ok(await client.patch(f"/rooms/{rid}", json=body, headers=alice))
    await _ok(await client.delete(f"/rooms/{rid}?scope=for_everyone", headers=alice))
    report = await replay(pool, [projection_by_name("rooms")], verify=True, batch_size=batch_size)
    assert report.differences == {"rooms": 0}
    row = await pool.fetchrow("SELECT name, metadata, display_name, description, who_can_post, retention_days,"
                              " deleted_seq FROM rooms WHERE room_id = $1", rid)
    assert row is not None
    assert (row["name"], row["metadata"], row["display_name"], row["description"], row["who_can_post"],
            row["retention_days"]) == (None, None, "shown again", None, "all_members", None)
    assert row["deleted_seq"] is not None


@pytest.mark.parametrize("batch_size", [5000, 2])
async def test_replay_folds_dead_letters_set_based_as_the_append_applies_them_one_by_one(
    pool: asyncpg.Pool, runtime: Runtime, tenant: Tenant, batch_size: int
) -> None:
    stream, meta = deliveries_stream(tenant.tenant_id), EventMetadata(tenant_id=tenant.tenant_id)
    at = datetime(2026, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)

    def failed(delivery: str, attempts: int, **fields: object) -> DeliveryFailed:
        return DeliveryFailed(delivery_id=f"{tenant.tenant_id}:{delivery}", kind="message", user_id="bob",
                              attempts=attempts, last_attempt_at=at + timedelta(minutes=attempts), error=f"e{attempts}",
                              **fields)  # type: ignore[arg-type]

    def closed(kind: type[DeliveryRetried | DeliveryDiscarded], delivery: str) -> DeliveryRetried | DeliveryDiscarded:
        return kind(delivery_id=f"{tenant.tenant_id}:{delivery}", by="admin")

    appends: list[list[Event]] = [
        [failed("d1", 1, room_id="r1", job={"a": [1]}), closed(DeliveryRetried, "d1")],
        [failed("d1", 2, message_id="m1"), closed(DeliveryDiscarded, "d1"), failed("d2", 5, topic="t")],
        [closed(DeliveryRetried, "d3"), failed("d3", 1), closed(DeliveryRetried, "d3")],  # no row for the first
        [closed(DeliveryRetried, "d1"), failed("d1", 3, webhook_id="wh"), closed(DeliveryRetried, "d1")],
        [closed(DeliveryDiscarded, "d4")],  # never failed: no dead letter
    ]
    for i, events in enumerate(appends):
        await runtime.appender.append(stream, events, tenant_id=tenant.tenant_id, metadata=meta, create_stream=i == 0)
    report = await replay(pool, [projection_by_name("dead_letters")], verify=True, batch_size=batch_size)
    assert report.differences == {"dead_letters": 0}
    rows = {r["delivery_id"].split(":")[-1]: r for r in await pool.fetch(
        "SELECT delivery_id, status, retries, attempts, room_id, message_id, webhook_id, job FROM dead_letters"
        " WHERE tenant_id = $1", tenant.tenant_id)}
    assert sorted(rows) == ["d1", "d2", "d3"]
    assert [rows["d1"][c] for c in ("status", "retries", "attempts", "room_id", "message_id", "webhook_id", "job")
            ] == ["retried", 3, 3, None, None, "wh", None]
    assert (rows["d2"]["status"], rows["d2"]["retries"]) == ("open", 0)
    assert (rows["d3"]["status"], rows["d3"]["retries"]) == ("retried", 1)
