"""The knowledge base: write articles (load → decide → append), and find the ones that answer a question."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from msgspec import UNSET

from projections.kb import fetch_article, kb_stream, search_articles
from projections.support_tickets import latest_customer_comment
from schemas import support as s
from schemas.errors import ArticleNotFound, ValidationError, WrongExpectedSeq
from schemas.events import SupportKbArticleDeleted, SupportKbArticleSaved
from service.commands.metadata import metadata_for
from service.commands.support.sessions import load_session
from service.commands.support.tickets import load_ticket
from service.domain.authorization import authorize
from service.domain.support.kb import merged_article, suggested_response
from service.identity.auth import Principal
from service.identity.ids import new_id

if TYPE_CHECKING:
    from service.runtime import Runtime

_RETRIES = 5  # concurrent edits of one article: re-read and re-apply the change this often
# How much of a session the suggestions read when no message is given: its customer's latest messages.
_SESSION_MESSAGES = 3


def article_view(row: asyncpg.Record) -> s.Article:
    return s.Article(
        id=row["article_id"], title=row["title"], body=row["body"], category=row["category"], tags=list(row["tags"]),
        status=row["status"], locale=row["locale"], version=row["version"],
        url=row["url"] or f"/support/kb/articles/{row['article_id']}", created_by=row["created_by"],
        updated_by=row["updated_by"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


async def load_article(runtime: Runtime, principal: Principal, article_id: str) -> asyncpg.Record:
    """The article as the caller may see it: customers see published articles only (others are 404)."""
    row = await fetch_article(runtime.pool, principal.tenant_id, article_id)
    if row is None or (principal.role == "customer" and row["status"] != "published"):
        raise ArticleNotFound("no such article", field="article_id")
    return row


async def create_article(runtime: Runtime, principal: Principal, cmd: s.CreateArticle) -> asyncpg.Record:
    authorize("support.kb.manage", principal.role)
    article_id = new_id("kb")
    event = SupportKbArticleSaved(
        article_id=article_id, title=cmd.title, body=cmd.body, category=cmd.category, tags=sorted(set(cmd.tags)),
        status=cmd.status, locale=cmd.locale, url=cmd.url, by=principal.user_id,
    )
    await runtime.appender.append(kb_stream(principal.tenant_id, article_id), [event], tenant_id=principal.tenant_id,
                                  metadata=metadata_for(principal), expected_seq=0, create_stream=True)
    return await load_article(runtime, principal, article_id)


async def update_article(
    runtime: Runtime, principal: Principal, article_id: str, cmd: s.UpdateArticle
) -> asyncpg.Record:
    """Apply the fields given to the article as it is now, at the version read (retried on a race)."""
    authorize("support.kb.manage", principal.role)
    for _ in range(_RETRIES):
        row = await load_article(runtime, principal, article_id)
        if cmd.expected_version is not UNSET and cmd.expected_version != row["version"]:
            raise WrongExpectedSeq(f"the article is at version {row['version']}, not {cmd.expected_version}",
                                   field="expected_version")
        event = merged_article(dict(row), cmd, by=principal.user_id)
        try:
            await runtime.appender.append(kb_stream(principal.tenant_id, article_id), [event],
                                          tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                                          expected_seq=row["version"])
        except WrongExpectedSeq:
            if cmd.expected_version is not UNSET:
                raise
            continue
        return await load_article(runtime, principal, article_id)
    raise WrongExpectedSeq("the article kept changing; try again", field="article_id")


async def delete_article(runtime: Runtime, principal: Principal, article_id: str) -> None:
    authorize("support.kb.manage", principal.role)
    row = await load_article(runtime, principal, article_id)
    try:
        await runtime.appender.append(
            kb_stream(principal.tenant_id, article_id),
            [SupportKbArticleDeleted(article_id=article_id, by=principal.user_id)],
            tenant_id=principal.tenant_id, metadata=metadata_for(principal), expected_seq=row["version"])
    except WrongExpectedSeq:
        await load_article(runtime, principal, article_id)  # deleted meanwhile: 404; changed: delete that
        await delete_article(runtime, principal, article_id)


async def search(
    runtime: Runtime, principal: Principal, text: str, *, category: str | None, locale: str | None, limit: int,
    fallback_to_any: bool = True,
) -> s.KbSearchResult:
    """Published articles matching every word of `text`, else (when none does) any of them; best first."""
    authorize("support.kb.read", principal.role)
    rows = await search_articles(runtime.pool, principal.tenant_id, text, match="and", category=category,
                                 locale=locale, limit=limit)
    if not rows and fallback_to_any:
        rows = await search_articles(runtime.pool, principal.tenant_id, text, match="or", category=category,
                                     locale=locale, limit=limit)
    return _result(rows, text)


async def suggest(runtime: Runtime, principal: Principal, cmd: s.SuggestArticles) -> s.KbSearchResult:
    """Articles for what a customer asks: the given message, the session customer's latest messages, or the ticket's
    subject, description and latest customer comment."""
    authorize("support.kb.suggest", principal.role)
    text = cmd.message
    if cmd.session_id is not None and cmd.ticket_id is not None:
        raise ValidationError("name a session or a ticket, not both", field="ticket_id")
    if cmd.ticket_id is not None:
        ticket = await load_ticket(runtime, principal, cmd.ticket_id)
        if text is None:
            latest = await latest_customer_comment(runtime.pool, cmd.ticket_id)
            text = " ".join(part for part in (ticket["subject"], ticket["description"], latest) if part)
    if cmd.session_id is not None:
        session = await load_session(runtime, principal, cmd.session_id)
        if text is None:
            contents = await runtime.pool.fetch(
                "SELECT content FROM messages WHERE room_id = $1 AND sender_id = $2 AND deleted_seq IS NULL"
                " ORDER BY seq DESC LIMIT $3", session["room_id"], session["customer_id"], _SESSION_MESSAGES)
            text = " ".join(r["content"] for r in reversed(contents)) or None
    if text is None:
        raise ValidationError("give a message, or a session whose customer wrote something", field="message")
    # A customer's words are a question, not a query: any of them may match, the best matches first.
    rows = await search_articles(runtime.pool, principal.tenant_id, text, match="or", category=None, locale=None,
                                 limit=cmd.limit)
    return _result(rows, text)


def _result(rows: list[asyncpg.Record], text: str) -> s.KbSearchResult:
    hits = [
        s.ArticleHit(id=r["article_id"], title=r["title"], excerpt=r["excerpt"], category=r["category"],
                     relevance_score=round(float(r["rank"]), 4),
                     url=r["url"] or f"/support/kb/articles/{r['article_id']}")
        for r in rows
    ]
    return s.KbSearchResult(results=hits, suggested_response=suggested_response(rows[0]["body"]) if rows else None,
                            query=text)
