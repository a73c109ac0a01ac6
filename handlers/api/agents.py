"""`/api/v1/agents`: agents, their status and their API tokens.

Permissions (bot.domain.auth): admins manage agents and tokens; an agent reads itself and sets its
own status; a manager reads the agents of their numbers, and sets the status of those all of
whose numbers they manage.

What a caller may not see does not exist for them: an agent they may not read is a 404 with
the body of a missing agent's, whatever they asked to do with it, so that no answer tells
whether it exists. A 403 means "you can see this agent, but may not do that". Of an agent's
`numbers`, a manager sees only the ones they are attached to (`bot.domain.auth.visible_numbers`).
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import clock_key, queue_key, stores_key
from bot.domain import auth
from bot.domain.auth import Caller
from bot.domain.config import (
    AgentInput,
    AgentPage,
    AgentRecord,
    IssuedToken,
    StatusInput,
    TokenPage,
    parse_body,
)
from bot.domain.errors import NotFoundError
from bot.runtime.queue import enqueue_drain_queue
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless

_ADMINS_ONLY = "only admins manage agents and tokens"


def _agent_id(request: web.Request) -> str:
    return path_id(request, "agent_id")


def _missing(agent_id: str) -> NotFoundError:
    return NotFoundError(f"agent {agent_id} not found")


async def visible_agent(request: web.Request, agent_id: str) -> AgentRecord:
    """The agent, whole (all its numbers), if the caller may read it
    (`bot.domain.auth.can_read_agent`).

    For authorisation decisions: render it with `shown_to`, never as it is.

    Raises:
        NotFoundError: there is no such agent, or the caller may not see it; both answer the
            same 404, so an existence is never revealed to whoever may not know it.
    """
    agent = await request.app[stores_key].agents.get(agent_id)
    if agent is None or not auth.can_read_agent(caller_of(request), agent_id, agent.numbers):
        raise _missing(agent_id)
    return agent


def shown_to(caller: Caller, agent: AgentRecord) -> AgentRecord:
    """The agent as `caller` may see it: of its numbers, only those the caller may know."""
    numbers = auth.visible_numbers(caller, agent.id, agent.numbers)
    return agent if numbers == agent.numbers else agent.model_copy(update={"numbers": numbers})


async def _admins_only(request: web.Request, agent_id: str) -> None:
    """Admins pass. Anybody else: 404 for an agent they may not see, else 403."""
    if auth.can_manage_agents(caller_of(request)):
        return
    await visible_agent(request, agent_id)
    forbid_unless(False, _ADMINS_ONLY)


async def list_agents(request: web.Request) -> web.Response:
    """Admins: every agent; managers: the agents of their numbers (each showing only the
    numbers the manager is attached to); agents: themselves."""
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
    items = [shown_to(caller, a) for a in await store.get_many(ids)]
    return model_response(AgentPage(items=items))


async def put_agent(request: web.Request) -> web.Response:
    """Create (201) or replace (200) an agent (admins); its status is kept.

    Anybody else gets 403 whether the agent exists or not: no other role may ever create or
    replace one, so the answer depends on the caller alone and reveals nothing.
    """
    agent_id = _agent_id(request)
    forbid_unless(auth.can_manage_agents(caller_of(request)), _ADMINS_ONLY)
    data = parse_body(AgentInput, await read_json(request))
    record, created = await request.app[stores_key].agents.put(
        agent_id, data, at=request.app[clock_key].now()
    )
    await _drain_for(request, record, "agent_changed")
    return model_response(record, status=201 if created else 200)


async def get_agent(request: web.Request) -> web.Response:
    """The agent (admins, the agent, managers of one of its numbers); 404 for anybody else."""
    agent = await visible_agent(request, _agent_id(request))
    return model_response(shown_to(caller_of(request), agent))


async def delete_agent(request: web.Request) -> web.Response:
    """Delete an agent and revoke its tokens (admins): 204, or 404 when there was none."""
    agent_id = _agent_id(request)
    await _admins_only(request, agent_id)
    if not await request.app[stores_key].agents.delete(agent_id):
        raise _missing(agent_id)
    return web.Response(status=204)


async def put_status(request: web.Request) -> web.Response:
    """Set `online`, `break` or `invisible`: the agent, an admin, or a manager of ALL its
    numbers (`bot.domain.auth.can_set_status`); 403 for another manager who sees the agent, 404 for
    whoever does not.

    Idempotent: the same status again keeps `status_changed_at`. 409 `agent_changed` when an
    admin changed the agent's numbers between the permission check and the write.
    """
    agent_id = _agent_id(request)
    caller = caller_of(request)
    agent = await visible_agent(request, agent_id)
    forbid_unless(
        auth.can_set_status(caller, agent_id, agent.numbers),
        "only the agent, an admin or a manager of every number the agent serves",
    )
    data = parse_body(StatusInput, await read_json(request))
    # A manager's right depends on the agent's numbers: the write re-checks them.
    checked = None if caller.is_admin or caller.id == agent_id else agent.numbers
    record = await request.app[stores_key].agents.set_status(
        agent_id, data.status, at=request.app[clock_key].now(), if_numbers=checked
    )
    await _drain_for(request, record, "agent_online")
    return model_response(shown_to(caller, record))


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
    await _admins_only(request, agent_id)
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
    await _admins_only(request, agent_id)
    store = request.app[stores_key].agents
    if await store.get(agent_id) is None:
        raise _missing(agent_id)
    return model_response(TokenPage(items=await store.tokens(agent_id)))


async def revoke_tokens(request: web.Request) -> web.Response:
    """Revoke every token of the agent (admins): 204. Idempotent."""
    agent_id = _agent_id(request)
    await _admins_only(request, agent_id)
    await request.app[stores_key].agents.revoke_tokens(agent_id)
    return web.Response(status=204)


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke one token by id (admins): 204, or 404 when the agent has no such token."""
    agent_id = _agent_id(request)
    await _admins_only(request, agent_id)
    token_id = request.match_info["token_id"]
    if not await request.app[stores_key].agents.revoke_token(agent_id, token_id):
        raise NotFoundError(f"agent {agent_id} has no token {token_id}")
    return web.Response(status=204)
