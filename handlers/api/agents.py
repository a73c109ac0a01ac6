"""`/api/v1/agents`: agents, their status and their API tokens.

Permissions (bot.auth): admins manage agents and tokens; an agent reads itself and sets its
own status; a manager reads the agents of their numbers and sets their status. A caller who
may not see an agent gets 403 whether or not it exists.
"""

from __future__ import annotations

from aiohttp import web

from bot import auth
from bot.config import (
    AgentInput,
    AgentPage,
    AgentRecord,
    IssuedToken,
    StatusInput,
    TokenPage,
    parse_body,
)
from bot.errors import NotFoundError
from bot.keys import clock_key, queue_key, stores_key
from bot.queue import enqueue_drain_queue
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless

_ADMINS_ONLY = "only admins manage agents and tokens"


def _agent_id(request: web.Request) -> str:
    return path_id(request, "agent_id")


async def _visible_agent(request: web.Request, agent_id: str) -> AgentRecord:
    """The agent, if the caller may read it: 403 when not (existing or not), 404 when an
    admin or the agent themself asks for one that does not exist."""
    caller = caller_of(request)
    agent = await request.app[stores_key].agents.get(agent_id)
    numbers = agent.numbers if agent is not None else ()
    forbid_unless(auth.can_read_agent(caller, agent_id, numbers), "not one of your agents")
    if agent is None:
        raise NotFoundError(f"agent {agent_id} not found")
    return agent


async def list_agents(request: web.Request) -> web.Response:
    """Admins: every agent; managers: the agents of their numbers; agents: themselves."""
    caller = caller_of(request)
    store = request.app[stores_key].agents
    if caller.is_admin:
        ids = await store.ids()
    else:
        visible = {caller.id}
        if caller.role == "manager":
            for number in caller.numbers:
                visible |= await store.ids_on_number(number)
        ids = sorted(visible)
    return model_response(AgentPage(items=await store.get_many(ids)))


async def put_agent(request: web.Request) -> web.Response:
    """Create (201) or replace (200) an agent (admins); its status is kept."""
    agent_id = _agent_id(request)
    forbid_unless(auth.can_manage_agents(caller_of(request)), _ADMINS_ONLY)
    data = parse_body(AgentInput, await read_json(request))
    record, created = await request.app[stores_key].agents.put(
        agent_id, data, at=request.app[clock_key].now()
    )
    await _drain_for(request, record, "agent_changed")
    return model_response(record, status=201 if created else 200)


async def get_agent(request: web.Request) -> web.Response:
    return model_response(await _visible_agent(request, _agent_id(request)))


async def delete_agent(request: web.Request) -> web.Response:
    """Delete an agent and revoke its tokens (admins): 204, or 404 when there was none."""
    agent_id = _agent_id(request)
    forbid_unless(auth.can_manage_agents(caller_of(request)), _ADMINS_ONLY)
    if not await request.app[stores_key].agents.delete(agent_id):
        raise NotFoundError(f"agent {agent_id} not found")
    return web.Response(status=204)


async def put_status(request: web.Request) -> web.Response:
    """Set `online`, `break` or `invisible`: the agent, an admin, or a manager of its numbers.

    Idempotent: the same status again keeps `status_changed_at`.
    """
    agent_id = _agent_id(request)
    agent = await _visible_agent(request, agent_id)
    forbid_unless(auth.can_set_status(caller_of(request), agent_id, agent.numbers))
    data = parse_body(StatusInput, await read_json(request))
    record = await request.app[stores_key].agents.set_status(
        agent_id, data.status, at=request.app[clock_key].now()
    )
    await _drain_for(request, record, "agent_online")
    return model_response(record)


async def _drain_for(request: web.Request, record: AgentRecord, reason: str) -> None:
    """An online agent may have room now (came online, more slots, a new number): their
    numbers' queues drain (issue 7). Draining when nothing changed is harmless."""
    if record.status == "online" and record.slots > 0:
        for number in record.numbers:
            await enqueue_drain_queue(request.app[queue_key], number, reason)


async def issue_token(request: web.Request) -> web.Response:
    """A new bearer token for the agent (admins): 201 `{"token", "token_id", "agent_id"}`.

    The token is in this answer only; storage keeps its SHA-256 digest. Not idempotent by
    design: each call issues another token (revoke the ones you lose).
    """
    agent_id = _agent_id(request)
    caller = caller_of(request)
    forbid_unless(auth.can_manage_agents(caller), _ADMINS_ONLY)
    token = auth.new_token()
    digest = auth.hash_token(token)
    token_id = auth.token_id(digest)
    await request.app[stores_key].agents.add_token(
        agent_id, digest, token_id, actor=caller.id, at=request.app[clock_key].now()
    )
    return model_response(IssuedToken(token=token, token_id=token_id, agent_id=agent_id), 201)


async def list_tokens(request: web.Request) -> web.Response:
    """The agent's live tokens by id and creation time (admins); never the tokens."""
    agent_id = _agent_id(request)
    forbid_unless(auth.can_manage_agents(caller_of(request)), _ADMINS_ONLY)
    store = request.app[stores_key].agents
    if await store.get(agent_id) is None:
        raise NotFoundError(f"agent {agent_id} not found")
    return model_response(TokenPage(items=await store.tokens(agent_id)))


async def revoke_tokens(request: web.Request) -> web.Response:
    """Revoke every token of the agent (admins): 204. Idempotent."""
    agent_id = _agent_id(request)
    forbid_unless(auth.can_manage_agents(caller_of(request)), _ADMINS_ONLY)
    await request.app[stores_key].agents.revoke_tokens(agent_id)
    return web.Response(status=204)


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke one token by id (admins): 204, or 404 when the agent has no such token."""
    agent_id = _agent_id(request)
    forbid_unless(auth.can_manage_agents(caller_of(request)), _ADMINS_ONLY)
    token_id = request.match_info["token_id"]
    if not await request.app[stores_key].agents.revoke_token(agent_id, token_id):
        raise NotFoundError(f"agent {agent_id} has no token {token_id}")
    return web.Response(status=204)
