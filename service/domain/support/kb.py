"""Knowledge-base rules: how a change applies to an article, and the reply an article suggests."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from schemas import support as s
from schemas.events import SupportKbArticleSaved

SUGGESTION_CHARACTERS = 500


def merged_article(current: dict[str, Any], change: s.UpdateArticle, *, by: str) -> SupportKbArticleSaved:
    """The whole article after `change` (only the fields it gives) to the article as it is."""

    def pick(name: str) -> Any:
        value = getattr(change, name)
        return current[name] if value is UNSET else value

    tags = pick("tags")
    return SupportKbArticleSaved(
        article_id=current["article_id"], title=pick("title"), body=pick("body"), category=pick("category"),
        tags=sorted(set(tags)), status=pick("status"), locale=pick("locale"), url=pick("url"), by=by,
    )


def suggested_response(body: str) -> str:
    """A reply built from an article: its first paragraph, cut at a word within SUGGESTION_CHARACTERS."""
    paragraphs = [p.strip() for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]
    text = " ".join((paragraphs[0] if paragraphs else body).split())
    if len(text) <= SUGGESTION_CHARACTERS:
        return text
    cut = text[:SUGGESTION_CHARACTERS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"
