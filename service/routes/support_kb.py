"""The knowledge base (seed 001 "Knowledge Base", under /support): articles, search and suggestions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from projections.kb import list_articles
from schemas import support as s
from schemas.api import Success
from schemas.errors import (
    ArticleNotFound,
    Forbidden,
    SessionNotFound,
    TicketNotFound,
    ValidationError,
    WrongExpectedSeq,
)
from service.commands.support import kb as commands
from service.web.endpoints import Endpoint, Link, Query, TextQuery
from service.web.request import JSON, body_as, caller, caller_may, runtime_of

LIMIT = Query("limit", "most articles to return", minimum=1, maximum=100, default=20)
OFFSET = Query("offset", "articles to skip", minimum=0, default=0)
SEARCH_LIMIT = Query("limit", "most results to return", minimum=1, maximum=50, default=10)
CATEGORY = TextQuery("category", "only articles of this category", max_length=64, required=False)
STATUS = TextQuery("status", "only articles with this status (draft, published, archived)", max_length=20,
                   required=False)
LOCALE = TextQuery("locale", "only articles in this language (e.g. en, pt-BR)", max_length=35, required=False)
Q = TextQuery("q", "what to look for: words (all of them; any, when none has them all), \"a phrase\", -not, or",
              max_length=500)
_STATUSES = ("draft", "published", "archived")
_ARTICLE = "/support/kb/articles/{article_id}"


def _article_id(request: Request) -> str:
    return str(request.path_params["article_id"])


async def post_article(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.CreateArticle)
    row = await commands.create_article(runtime_of(request), principal, cmd)
    return JSON(commands.article_view(row), status_code=201)


async def get_articles(request: Request) -> Response:
    principal = await caller_may(request, "support.kb.read")
    status = STATUS.read(request)
    if status is not None and status not in _STATUSES:
        raise ValidationError(f"status must be one of {', '.join(_STATUSES)}", field="status")
    if principal.role == "customer":
        if status not in (None, "published"):
            return JSON(s.ArticleList(articles=[], total=0, limit=LIMIT.require(request),
                                      offset=OFFSET.require(request)))
        status = "published"
    limit, offset = LIMIT.require(request), OFFSET.require(request)
    rows, total = await list_articles(runtime_of(request).pool, principal.tenant_id, category=CATEGORY.read(request),
                                      status=status, locale=LOCALE.read(request), limit=limit, offset=offset)
    return JSON(s.ArticleList(articles=[commands.article_view(r) for r in rows], total=total, limit=limit,
                              offset=offset))


async def get_article(request: Request) -> Response:
    principal = await caller_may(request, "support.kb.read")
    return JSON(commands.article_view(await commands.load_article(runtime_of(request), principal,
                                                                  _article_id(request))))


async def put_article(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.UpdateArticle)
    row = await commands.update_article(runtime_of(request), principal, _article_id(request), cmd)
    return JSON(commands.article_view(row))


async def delete_article(request: Request) -> Response:
    principal = await caller(request)
    await commands.delete_article(runtime_of(request), principal, _article_id(request))
    return JSON(Success())


async def get_search(request: Request) -> Response:
    principal = await caller_may(request, "support.kb.read")
    text = Q.read(request)
    assert text is not None
    return JSON(await commands.search(runtime_of(request), principal, text, category=CATEGORY.read(request),
                                      locale=LOCALE.read(request), limit=SEARCH_LIMIT.require(request)))


async def post_suggest(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.SuggestArticles)
    return JSON(await commands.suggest(runtime_of(request), principal, cmd))


ENDPOINTS = [
    Endpoint("POST", "/support/kb/articles", post_article, "Write a knowledge-base article (agents and admins)",
             body=s.CreateArticle, response=s.Article, status=201, errors=(Forbidden,),
             links=(Link("GET", _ARTICLE, {"article_id": "$response.body#/id"}),
                    Link("PUT", _ARTICLE, {"article_id": "$response.body#/id"}),
                    Link("DELETE", _ARTICLE, {"article_id": "$response.body#/id"}))),
    Endpoint("GET", "/support/kb/articles", get_articles,
             "Knowledge-base articles, most recently changed first, with the total (customers: published only)",
             response=s.ArticleList, errors=(Forbidden,), query=(CATEGORY, STATUS, LOCALE, LIMIT, OFFSET)),
    Endpoint("GET", _ARTICLE, get_article, "One article (customers: published ones only)", response=s.Article,
             errors=(ArticleNotFound, Forbidden)),
    Endpoint("PUT", _ARTICLE, put_article,
             "Change an article: the fields given (agents and admins); expected_version refuses a lost update",
             body=s.UpdateArticle, response=s.Article, errors=(ArticleNotFound, Forbidden, WrongExpectedSeq)),
    Endpoint("DELETE", _ARTICLE, delete_article, "Delete an article (agents and admins)", response=Success,
             errors=(ArticleNotFound, Forbidden)),
    Endpoint("GET", "/support/kb/search", get_search,
             "Published articles matching a query, best first, with excerpts, relevance 0-1 and a suggested reply",
             response=s.KbSearchResult, errors=(Forbidden,), query=(Q, CATEGORY, LOCALE, SEARCH_LIMIT)),
    Endpoint("POST", "/support/kb/suggest", post_suggest,
             "Articles answering a customer's message, or the session customer's latest messages (agents, admins)",
             body=s.SuggestArticles, response=s.KbSearchResult,
             errors=(Forbidden, SessionNotFound, TicketNotFound)),
]
