"""The knowledge base: articles (inline, for reads right after a write) and their full-text index (catch-up).

Each article is a stream `support-kb:<tenant>:<article_id>`; `support.kb.article_saved` restates the whole
article, so the stream's seq is its version, and `support.kb.article_deleted` ends it. The index follows the
log a moment behind (projections/catchup.py), like message search: title, tags and body weighted A, B, C,
in the text search configuration of the article's language (English stems "refunds" to "refund"; a
language PostgreSQL has no configuration for falls back to 'simple').
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import RecordedEvent, SupportKbArticleDeleted, SupportKbArticleSaved

# Language subtag -> PostgreSQL's built-in text search configuration of that language.
TEXT_CONFIGS = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "da": "danish", "nl": "dutch",
    "en": "english", "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian", "ne": "nepali",
    "no": "norwegian", "nb": "norwegian", "nn": "norwegian", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sr": "serbian", "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish",
    "yi": "yiddish",
}


def text_config(locale: str) -> str:
    """The text search configuration for an article's locale (`pt-BR` → portuguese)."""
    return TEXT_CONFIGS.get(locale.split("-", 1)[0].lower(), "simple")


def kb_stream(tenant_id: str, article_id: str) -> str:
    return f"support-kb:{tenant_id}:{article_id}"


_SAVED = """
INSERT INTO kb_articles (tenant_id, article_id, title, body, category, tags, status, locale, url, version,
    created_by, updated_by, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $12)
ON CONFLICT (tenant_id, article_id) DO UPDATE SET title = $3, body = $4, category = $5, tags = $6, status = $7,
    locale = $8, url = $9, version = $10, updated_by = $11, updated_at = $12
WHERE kb_articles.version < $10
"""
_DELETED = "DELETE FROM kb_articles WHERE tenant_id = $1 AND article_id = $2"


class KbArticlesProjection:
    name = "kb_articles"
    version = 1
    tables = ("kb_articles",)
    handles = frozenset({"support.kb.article_saved", "support.kb.article_deleted"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE kb_articles (
        tenant_id  text NOT NULL,
        article_id text NOT NULL,
        title      text NOT NULL,
        body       text NOT NULL,
        category   text,
        tags       text[] NOT NULL,
        status     text NOT NULL,
        locale     text NOT NULL,
        url        text,
        version    bigint NOT NULL,
        created_by text NOT NULL,
        updated_by text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, article_id)
    );
    CREATE INDEX kb_articles_listing ON kb_articles (tenant_id, updated_at DESC, article_id);
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            event = rec.event
            if isinstance(event, SupportKbArticleSaved):
                await conn.execute(_SAVED, rec.tenant_id, event.article_id, event.title, event.body, event.category,
                                   event.tags, event.status, event.locale, event.url, rec.seq, event.by,
                                   rec.created_at)
            elif isinstance(event, SupportKbArticleDeleted):
                await conn.execute(_DELETED, rec.tenant_id, event.article_id)


# A deleted article keeps its row without a document, so a save applied late cannot bring it back.
_INDEX = """
INSERT INTO kb_search (tenant_id, article_id, config, document, changed_seq)
VALUES ($1, $2, $3::text, setweight(to_tsvector($3::text::regconfig, $4), 'A')
                 || setweight(to_tsvector($3::text::regconfig, $5), 'B')
                 || setweight(to_tsvector($3::text::regconfig, $6), 'C'), $7)
ON CONFLICT (tenant_id, article_id) DO UPDATE SET config = EXCLUDED.config, document = EXCLUDED.document,
    changed_seq = EXCLUDED.changed_seq
WHERE kb_search.changed_seq < EXCLUDED.changed_seq AND kb_search.document IS NOT NULL
"""
_UNINDEX = """
INSERT INTO kb_search (tenant_id, article_id, config, document, changed_seq) VALUES ($1, $2, 'simple', NULL, $3)
ON CONFLICT (tenant_id, article_id) DO UPDATE SET document = NULL, changed_seq = EXCLUDED.changed_seq
"""


class KbSearchProjection:
    name = "kb_search"
    version = 1
    tables = ("kb_search",)
    handles = frozenset({"support.kb.article_saved", "support.kb.article_deleted"})
    sql = None  # a catch-up projection: never inside the append
    ddl = """
    CREATE TABLE kb_search (
        tenant_id   text NOT NULL,
        article_id  text NOT NULL,
        config      text NOT NULL,
        document    tsvector,
        changed_seq bigint NOT NULL,
        PRIMARY KEY (tenant_id, article_id)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            event = rec.event
            if isinstance(event, SupportKbArticleSaved):
                await conn.execute(_INDEX, rec.tenant_id, event.article_id, text_config(event.locale), event.title,
                                   " ".join(event.tags), event.body, rec.seq)
            elif isinstance(event, SupportKbArticleDeleted):
                await conn.execute(_UNINDEX, rec.tenant_id, event.article_id, rec.seq)


async def fetch_article(conn: Queryable, tenant_id: str, article_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM kb_articles WHERE tenant_id = $1 AND article_id = $2",
                               tenant_id, article_id)


async def list_articles(
    conn: Queryable, tenant_id: str, *, category: str | None, status: str | None, locale: str | None,
    limit: int, offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """A page of the tenant's articles, most recently changed first, and how many match in all."""
    where = ("tenant_id = $1 AND ($2::text IS NULL OR category = $2) AND ($3::text IS NULL OR status = $3)"
             " AND ($4::text IS NULL OR locale = $4)")
    rows = await conn.fetch(
        f"SELECT *, count(*) OVER () AS total FROM kb_articles WHERE {where}"
        " ORDER BY updated_at DESC, article_id LIMIT $5 OFFSET $6",
        tenant_id, category, status, locale, limit, offset,
    )
    if rows:
        return list(rows), int(rows[0]["total"])
    total = await conn.fetchval(f"SELECT count(*) FROM kb_articles WHERE {where}", tenant_id, category, status, locale)
    return [], int(total)


# Matching published articles, best first. `$3` chooses how the words combine: every word ('and', web search
# syntax: "phrases", -not, or) or any of them ('or', the words of a customer's message).
_SEARCH = """
SELECT a.article_id, a.title, a.category, a.url, rank,
       ts_headline(s.config::regconfig,
                   replace(replace(replace(a.body, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), q,
                   'StartSel=<mark>, StopSel=</mark>, MaxWords=35, MinWords=12, MaxFragments=2') AS excerpt,
       a.body
FROM kb_search s
JOIN kb_articles a ON a.tenant_id = s.tenant_id AND a.article_id = s.article_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN $3 = 'and' THEN websearch_to_tsquery(s.config::regconfig, $2)
                ELSE replace(plainto_tsquery(s.config::regconfig, $2)::text, ' & ', ' | ')::tsquery END AS q
) AS query
CROSS JOIN LATERAL (SELECT ts_rank_cd(s.document, q, 32) AS rank) AS ranked
WHERE s.tenant_id = $1 AND a.status = 'published' AND s.document @@ q
  AND ($4::text IS NULL OR a.category = $4) AND ($5::text IS NULL OR a.locale = $5)
ORDER BY rank DESC, a.updated_at DESC, a.article_id
LIMIT $6
"""


async def search_articles(
    conn: Queryable, tenant_id: str, text: str, *, match: str, category: str | None, locale: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Published articles matching `text` (`match` 'and' or 'or'), best first: article_id, title, category,
    url, rank (0 to 1), excerpt (HTML-escaped, matches in <mark>) and body."""
    return list(await conn.fetch(_SEARCH, tenant_id, text, match, category, locale, limit))
