"""The knowledge base under /support/kb: articles as events, full-text search with relevance, suggestions."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.conftest import Tenant, error_of
from tests.service.test_search import caught_up


async def kb_caught_up(pool: asyncpg.Pool) -> None:
    await caught_up(pool, "kb_search")


async def users(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.as_user("admin")
    for user_id, role in (("agent-kb", "agent"), ("cust-kb", "customer"), ("member-kb", "member")):
        response = await client.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                                     headers=admin)
        assert response.status_code in (201, 409), response.text


async def write(client: httpx.AsyncClient, tenant: Tenant, **article: Any) -> dict[str, Any]:
    response = await client.post("/support/kb/articles", json=article, headers=tenant.as_user("agent-kb"))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


REFUND = ("How to request a refund",
          "To request a refund, open your order and choose Refund.\n\nRefunds reach your card within 5 days.")


async def test_articles_are_written_versioned_and_read_by_role(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await users(client, tenant)
    agent, customer = tenant.as_user("agent-kb"), tenant.as_user("cust-kb")
    draft = await write(client, tenant, title="Shipping times", body="Orders ship in 2 days.", category="shipping",
                        tags=["ship", "delivery", "ship"])
    assert (draft["status"], draft["version"], draft["tags"], draft["locale"]) == ("draft", 1, ["delivery", "ship"],
                                                                                   "en")
    assert draft["url"] == f"/support/kb/articles/{draft['id']}"
    # Customers see published articles only: a draft is 404 to them, as if it did not exist.
    path = f"/support/kb/articles/{draft['id']}"
    assert error_of(await client.get(path, headers=customer), 404)["code"] == "ARTICLE_NOT_FOUND"
    listed = (await client.get("/support/kb/articles", headers=customer)).json()
    assert listed["total"] == 0 and listed["articles"] == []

    published = (await client.put(path, json={"status": "published", "url": "https://help.example.com/ship"},
                                  headers=agent)).json()
    assert (published["status"], published["version"], published["title"]) == ("published", 2, "Shipping times")
    assert published["url"] == "https://help.example.com/ship"
    assert (await client.get(path, headers=customer)).json()["version"] == 2
    # A stale expected_version is refused: no lost update.
    stale = await client.put(path, json={"title": "Old", "expected_version": 1}, headers=agent)
    assert error_of(stale, 409)["code"] == "SEQ_CONFLICT"
    cleared = (await client.put(path, json={"category": None, "expected_version": 2}, headers=agent)).json()
    assert (cleared["category"], cleared["version"]) == (None, 3)

    # Filters and paging with the total.
    await write(client, tenant, title="Returns", body="Send it back.", category="returns", status="published")
    page = (await client.get("/support/kb/articles", params={"limit": 1}, headers=agent)).json()
    assert (page["total"], len(page["articles"]), page["articles"][0]["title"]) == (2, 1, "Returns")
    by_status = (await client.get("/support/kb/articles", params={"status": "draft"}, headers=agent)).json()
    assert by_status["total"] == 0
    bad = await client.get("/support/kb/articles", params={"status": "secret"}, headers=agent)
    assert error_of(bad, 400)["field"] == "status"

    # Members and customers may not write; bad input is a 400 naming the field.
    for who in ("member-kb", "cust-kb"):
        refused = await client.post("/support/kb/articles", json={"title": "x", "body": "y"},
                                    headers=tenant.as_user(who))
        assert error_of(refused, 403)["code"] == "FORBIDDEN"
    for body, field in (({"title": " ", "body": "y"}, "title"), ({"title": "t", "body": "y", "locale": "x"}, "locale"),
                        ({"title": "t", "body": "y", "url": "javascript:alert(1)"}, "url")):
        response = await client.post("/support/kb/articles", json=body, headers=agent)
        assert error_of(response, 400)["field"] == field, body

    assert (await client.delete(path, headers=agent)).json() == {"success": True}
    assert error_of(await client.get(path, headers=agent), 404)["code"] == "ARTICLE_NOT_FOUND"
    assert error_of(await client.delete(path, headers=agent), 404)["code"] == "ARTICLE_NOT_FOUND"


async def test_search_ranks_published_articles_and_suggests_a_reply(
        client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, pool: asyncpg.Pool) -> None:
    await users(client, tenant)
    agent, customer = tenant.as_user("agent-kb"), tenant.as_user("cust-kb")
    refund = await write(client, tenant, title=REFUND[0], body=REFUND[1], category="refunds", status="published",
                         tags=["money"])
    mentions = await write(client, tenant, title="Order problems", body="A damaged order? We send a refund or a new"
                           " one. <b>Always</b> keep the box & label.", category="orders", status="published")
    await write(client, tenant, title="Refund policy (draft)", body="refund refund refund", status="draft")
    german = await write(client, tenant, title="Rückerstattung", body="Rückerstattungen dauern fünf Tage.",
                         locale="de", status="published")
    await users(client, other_tenant)
    await write(client, other_tenant, title="Refunds elsewhere", body="refund", status="published")
    await kb_caught_up(pool)

    found = (await client.get("/support/kb/search", params={"q": "refunds"}, headers=customer)).json()
    ids = [r["id"] for r in found["results"]]
    # The title match ranks first; drafts and the other tenant's articles never show; English stems refunds.
    assert ids == [refund["id"], mentions["id"]]
    scores = [r["relevance_score"] for r in found["results"]]
    assert all(0 < score < 1 for score in scores) and scores == sorted(scores, reverse=True)
    assert "<mark>" in found["results"][0]["excerpt"]
    assert found["suggested_response"] == "To request a refund, open your order and choose Refund."
    escaped = (await client.get("/support/kb/search", params={"q": "damaged box"}, headers=agent)).json()
    assert [r["id"] for r in escaped["results"]] == [mentions["id"]]
    assert "<b>" not in escaped["results"][0]["excerpt"] and "&lt;b&gt;" in escaped["results"][0]["excerpt"]

    # Every word first; when no article has them all, any of them.
    loose = (await client.get("/support/kb/search", params={"q": "refund spaceship"}, headers=agent)).json()
    assert [r["id"] for r in loose["results"]] == [refund["id"], mentions["id"]]
    in_category = (await client.get("/support/kb/search", params={"q": "refund", "category": "orders"},
                                    headers=agent)).json()
    assert [r["id"] for r in in_category["results"]] == [mentions["id"]]
    nothing = (await client.get("/support/kb/search", params={"q": "spaceship"}, headers=agent)).json()
    assert nothing == {"results": [], "suggested_response": None, "query": "spaceship"}
    stemmed = (await client.get("/support/kb/search", params={"q": "Rückerstattung", "locale": "de"},
                                headers=agent)).json()
    assert [r["id"] for r in stemmed["results"]] == [german["id"]]
    assert error_of(await client.get("/support/kb/search", headers=agent), 400)["field"] == "q"

    # Suggestions from a session: the customer's own words find the article; a message given wins.
    session = (await client.post("/support/sessions", json={"initial_message": "I want my money back, a refund"},
                                 headers=customer)).json()
    suggested = (await client.post("/support/kb/suggest", json={"session_id": session["session_id"]},
                                   headers=agent)).json()
    assert suggested["results"][0]["id"] == refund["id"] and suggested["suggested_response"]
    given = (await client.post("/support/kb/suggest", json={"message": "the box was damaged"}, headers=agent)).json()
    assert [r["id"] for r in given["results"]] == [mentions["id"]]
    assert error_of(await client.post("/support/kb/suggest", json={}, headers=agent), 400)["field"] == "message"
    refused = await client.post("/support/kb/suggest", json={"message": "refund"}, headers=customer)
    assert error_of(refused, 403)["code"] == "FORBIDDEN"
    foreign = await client.post("/support/kb/suggest", json={"session_id": session["session_id"]},
                                headers=other_tenant.as_user("agent-kb"))
    assert error_of(foreign, 404)["code"] == "SESSION_NOT_FOUND"

    # A deleted article leaves the index.
    await client.delete(f"/support/kb/articles/{refund['id']}", headers=agent)
    await kb_caught_up(pool)
    after = (await client.get("/support/kb/search", params={"q": "refunds"}, headers=agent)).json()
    assert [r["id"] for r in after["results"]] == [mentions["id"]]


async def test_suggestions_for_a_ticket_read_its_subject_description_and_latest_customer_comment(
        client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, pool: asyncpg.Pool) -> None:
    await users(client, tenant)
    agent, customer = tenant.as_user("agent-kb"), tenant.as_user("cust-kb")
    refund = await write(client, tenant, title=REFUND[0], body=REFUND[1], status="published")
    courier = await write(client, tenant, title="Where is my courier", body="Couriers call before they arrive.",
                          status="published")
    await kb_caught_up(pool)
    ticket = (await client.post("/support/tickets", json={"subject": "Order 12", "description": "It never came"},
                                headers=customer)).json()
    # The subject and description alone match no article; the customer's latest comment does.
    for words in ("Any news from the spaceship?", "Is the courier lost? Or should I ask for a refund?"):
        commented = await client.post(f"/support/tickets/{ticket['id']}/comments", json={"content": words},
                                      headers=customer)
        assert commented.status_code == 201, commented.text
    suggested = (await client.post("/support/kb/suggest", json={"ticket_id": ticket["id"]}, headers=agent)).json()
    assert {r["id"] for r in suggested["results"]} == {refund["id"], courier["id"]}
    assert "It never came" in suggested["query"] and "spaceship" not in suggested["query"]
    both = await client.post("/support/kb/suggest", json={"ticket_id": ticket["id"], "session_id": "sess_x"},
                             headers=agent)
    assert error_of(both, 400)["field"] == "ticket_id"
    await users(client, other_tenant)
    foreign = await client.post("/support/kb/suggest", json={"ticket_id": ticket["id"]},
                                headers=other_tenant.as_user("agent-kb"))
    assert error_of(foreign, 404)["code"] == "TICKET_NOT_FOUND"
