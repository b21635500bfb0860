"""Bots for tenant admins: register (the API key is shown once), list, read, change, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from projections.bots import list_bots
from schemas import api
from schemas.bots import Bot, CreateBot, CreatedBot, UpdateBot
from schemas.errors import BotExists, BotNotFound, NotTenantAdmin
from service.commands import bots as commands
from service.web.endpoints import Endpoint, Link
from service.web.request import JSON, body_as, caller, caller_may, runtime_of


async def post_bot(request: Request) -> Response:
    principal = await caller_may(request, "bots.manage")
    cmd = await body_as(request, CreateBot)
    return JSON(await commands.register(runtime_of(request), principal, cmd), status_code=201)


async def get_bots(request: Request) -> Response:
    principal = await caller_may(request, "bots.manage")
    return JSON([commands.bot_view(r) for r in await list_bots(runtime_of(request).pool, principal.tenant_id)])


async def get_bot(request: Request) -> Response:
    principal = await caller(request)
    row = await commands.require_bot(runtime_of(request), principal, request.path_params["bot_id"])
    return JSON(commands.bot_view(row))


async def patch_bot(request: Request) -> Response:
    principal = await caller_may(request, "bots.manage")
    cmd = await body_as(request, UpdateBot)
    row = await commands.update(runtime_of(request), principal, request.path_params["bot_id"], cmd)
    return JSON(commands.bot_view(row))


async def delete_bot(request: Request) -> Response:
    principal = await caller(request)
    await commands.delete(runtime_of(request), principal, request.path_params["bot_id"])
    return JSON(api.Success())


ENDPOINTS = [
    Endpoint("POST", "/bots", post_bot,
             "Register a bot (tenant admins): a user with the role bot and an API key acting only for it, shown only"
             " in this response; it is told about the messages that trigger it",
             body=CreateBot, response=CreatedBot, status=201, errors=(NotTenantAdmin, BotExists),
             links=(Link("GET", "/bots/{bot_id}"), Link("PATCH", "/bots/{bot_id}"), Link("DELETE", "/bots/{bot_id}"))),
    Endpoint("GET", "/bots", get_bots, "The tenant's bots, without their secrets (tenant admins)",
             response=list[Bot], errors=(NotTenantAdmin,)),
    Endpoint("GET", "/bots/{bot_id}", get_bot, "One bot (tenant admins)", response=Bot,
             errors=(NotTenantAdmin, BotNotFound)),
    Endpoint("PATCH", "/bots/{bot_id}", patch_bot, "Change a bot's name, delivery or triggers (tenant admins)",
             body=UpdateBot, response=Bot, errors=(NotTenantAdmin, BotNotFound)),
    Endpoint("DELETE", "/bots/{bot_id}", delete_bot,
             "Delete a bot: it gets no more deliveries and its key and reply tokens stop working (tenant admins)",
             response=api.Success, errors=(NotTenantAdmin, BotNotFound)),
]
