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

from bot.appkeys import deps_key, stores_key
from bot.domain import auth
from bot.domain.auth import Caller
from bot.domain.config import AgentInput, AgentPage, AgentRecord, StatusInput, TokenPage, parse_body
from bot.domain.errors import NotFoundError
from bot.services import agents
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of


def _agent_id(request: web.Request) -> str:
    return path_id(request, "agent_id")


async def visible_agent(request: web.Request, agent_id: str) -> AgentRecord:
    """The agent, whole, if the caller may read it (`bot.services.agents.visible_agent`: 404
    alike for a missing one and one they may not see). Render it with `shown_to`."""
    return await agents.visible_agent(request.app[stores_key], caller_of(request), agent_id)


def shown_to(caller: Caller, agent: AgentRecord) -> AgentRecord:
    """The agent as `caller` may see it: of its numbers, only those the caller may know."""
    numbers = auth.visible_numbers(caller, agent.id, agent.numbers)
    return agent if numbers == agent.numbers else agent.model_copy(update={"numbers": numbers})


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
    caller = caller_of(request)
    agents.require_agent_admin(caller)  # 403 before the body is read
    data = parse_body(AgentInput, await read_json(request))
    record, created = await agents.put_agent(request.app[deps_key], caller, agent_id, data)
    return model_response(record, status=201 if created else 200)


async def get_agent(request: web.Request) -> web.Response:
    """The agent (admins, the agent, managers of one of its numbers); 404 for anybody else."""
    agent = await visible_agent(request, _agent_id(request))
    return model_response(shown_to(caller_of(request), agent))


async def delete_agent(request: web.Request) -> web.Response:
    """Delete an agent and revoke its tokens (admins): 204, or 404 when there was none."""
    await agents.delete_agent(request.app[deps_key], caller_of(request), _agent_id(request))
    return web.Response(status=204)


async def put_status(request: web.Request) -> web.Response:
    """Set `online`, `break` or `invisible`: the agent, an admin, or a manager of ALL its
    numbers (`bot.domain.auth.can_set_status`); 403 for another manager who sees the agent, 404 for
    whoever does not.

    Idempotent: the same status again keeps `status_changed_at`. 409 `agent_changed` when an
    admin changed the agent's numbers between the permission check and the write.
    """
    caller = caller_of(request)
    agent = await visible_agent(request, _agent_id(request))
    agents.require_status_change(caller, agent)  # 403 before the body is read
    data = parse_body(StatusInput, await read_json(request))
    record = await agents.set_status(request.app[deps_key], caller, agent, data.status)
    return model_response(shown_to(caller, record))


async def issue_token(request: web.Request) -> web.Response:
    """A new bearer token for the agent (admins): 201 `{"token", "token_id", "agent_id"}`.

    The token is in this answer only; storage keeps its SHA-256 digest. Not idempotent by
    design: each call issues another token (revoke the ones you lose).
    """
    issued = await agents.issue_token(request.app[deps_key], caller_of(request), _agent_id(request))
    return model_response(issued, 201)


async def list_tokens(request: web.Request) -> web.Response:
    """The agent's live tokens by id and creation time (admins); never the tokens."""
    agent_id = _agent_id(request)
    stores = request.app[stores_key]
    await agents.require_admin_over(stores, caller_of(request), agent_id)
    if await stores.agents.get(agent_id) is None:
        raise NotFoundError(f"agent {agent_id} not found")
    return model_response(TokenPage(items=await stores.agents.tokens(agent_id)))


async def revoke_tokens(request: web.Request) -> web.Response:
    """Revoke every token of the agent (admins): 204. Idempotent."""
    await agents.revoke_tokens(request.app[deps_key], caller_of(request), _agent_id(request))
    return web.Response(status=204)


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke one token by id (admins): 204, or 404 when the agent has no such token."""
    agent_id = _agent_id(request)
    token_id = request.match_info["token_id"]
    await agents.revoke_token(request.app[deps_key], caller_of(request), agent_id, token_id)
    return web.Response(status=204)
