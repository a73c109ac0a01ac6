"""Agent use cases: an agent's status (going online drains their numbers' queues), agents and
their API tokens.

Permissions are `bot.domain.auth`'s: admins manage agents and tokens; an agent sets their own
status; a manager sets the status of an agent all of whose numbers they manage. An agent the
caller may not read does not exist for them (NotFoundError, the same as a missing one); a
ForbiddenError means "you can see this agent, but may not do that".
"""

from __future__ import annotations

from typing import Final

from bot.domain import auth
from bot.domain.auth import Caller
from bot.domain.config import AgentInput, AgentRecord, AgentStatus, IssuedToken
from bot.domain.errors import ForbiddenError, NotFoundError
from bot.runtime.deps import Deps
from bot.runtime.queue import enqueue_drain_queue
from storage import Stores

_ADMINS_ONLY: Final = "only admins manage agents and tokens"


def _missing(agent_id: str) -> NotFoundError:
    return NotFoundError(f"agent {agent_id} not found")


async def visible_agent(stores: Stores, caller: Caller, agent_id: str) -> AgentRecord:
    """The agent, whole (all its numbers), if `caller` may read it
    (`bot.domain.auth.can_read_agent`). For decisions: show it with `auth.visible_numbers`.

    Raises:
        NotFoundError: no such agent, or the caller may not see it; both alike.
    """
    agent = await stores.agents.get(agent_id)
    if agent is None or not auth.can_read_agent(caller, agent_id, agent.numbers):
        raise _missing(agent_id)
    return agent


def require_status_change(caller: Caller, agent: AgentRecord) -> None:
    """Raise ForbiddenError unless `caller` may set `agent`'s status: the agent, an admin, or
    a manager of every number the agent serves."""
    if not auth.can_set_status(caller, agent.id, agent.numbers):
        raise ForbiddenError(
            "only the agent, an admin or a manager of every number the agent serves"
        )


async def set_status(
    deps: Deps, caller: Caller, agent: AgentRecord, status: AgentStatus
) -> AgentRecord:
    """Set `agent`'s status (`require_status_change`); an agent online with free slots then
    pulls their numbers' waiting tickets (a `drain_queue` job per number). Idempotent: the
    same status again keeps `status_changed_at`. Returns the agent as stored, whole.

    Raises:
        ForbiddenError: see `require_status_change`.
        ConflictError: `agent_changed`, when the agent's numbers changed since `agent` was
            read and the caller's right depended on them (a manager's).
    """
    require_status_change(caller, agent)
    # A manager's right depends on the agent's numbers: the write re-checks them.
    checked = None if caller.is_admin or caller.id == agent.id else agent.numbers
    record = await deps.stores.agents.set_status(
        agent.id, status, at=deps.clock.now(), if_numbers=checked
    )
    await drain_for(deps, record, "agent_online")
    return record


async def drain_for(deps: Deps, record: AgentRecord, reason: str) -> None:
    """An online agent may have room now (came online, more slots, a new number): their
    numbers' queues drain (issue 7). Draining when nothing changed is harmless."""
    if record.status == "online" and record.slots > 0:
        for number in record.numbers:
            await enqueue_drain_queue(deps.redis, number, reason)


def require_agent_admin(caller: Caller) -> None:
    """Raise ForbiddenError unless `caller` manages agents (admins)."""
    if not auth.can_manage_agents(caller):
        raise ForbiddenError(_ADMINS_ONLY)


async def require_admin_over(stores: Stores, caller: Caller, agent_id: str) -> None:
    """Admins pass. Anybody else: NotFoundError for an agent they may not see, otherwise
    ForbiddenError (they see it, but only admins act on it)."""
    if auth.can_manage_agents(caller):
        return
    await visible_agent(stores, caller, agent_id)
    raise ForbiddenError(_ADMINS_ONLY)


async def put_agent(
    deps: Deps, caller: Caller, agent_id: str, data: AgentInput
) -> tuple[AgentRecord, bool]:
    """Create or replace an agent (admins), keeping its status; an online agent then pulls
    waiting tickets of its numbers. Idempotent on `agent_id`. Returns it and whether it is new.

    Raises:
        ForbiddenError: the caller is not an admin (whether the agent exists or not).
    """
    require_agent_admin(caller)
    record, created = await deps.stores.agents.put(agent_id, data, at=deps.clock.now())
    await drain_for(deps, record, "agent_changed")
    return record, created


async def delete_agent(deps: Deps, caller: Caller, agent_id: str) -> None:
    """Delete an agent and revoke its tokens (admins; `require_admin_over`).

    Raises:
        NotFoundError: no such agent (or, for a non-admin, one they may not see).
        ForbiddenError: a non-admin who sees the agent.
    """
    await require_admin_over(deps.stores, caller, agent_id)
    if not await deps.stores.agents.delete(agent_id):
        raise _missing(agent_id)


async def issue_token(deps: Deps, caller: Caller, agent_id: str) -> IssuedToken:
    """A new bearer token for the agent (admins). The token is in the answer only; storage
    keeps its SHA-256 digest. Not idempotent by design: each call issues another token.

    Raises:
        NotFoundError, ForbiddenError: see `require_admin_over`; NotFoundError also when the
            agent is deleted meanwhile.
    """
    await require_admin_over(deps.stores, caller, agent_id)
    token = auth.new_token()
    digest = auth.hash_token(token)
    token_id = auth.token_id(digest)
    await deps.stores.agents.add_token(
        agent_id, digest, token_id, actor=caller.id, at=deps.clock.now()
    )
    return IssuedToken(token=token, token_id=token_id, agent_id=agent_id)


async def revoke_tokens(deps: Deps, caller: Caller, agent_id: str) -> None:
    """Revoke every token of the agent (admins). Idempotent.

    Raises:
        NotFoundError, ForbiddenError: see `require_admin_over`.
    """
    await require_admin_over(deps.stores, caller, agent_id)
    await deps.stores.agents.revoke_tokens(agent_id)


async def revoke_token(deps: Deps, caller: Caller, agent_id: str, token_id: str) -> None:
    """Revoke one token of the agent by id (admins).

    Raises:
        NotFoundError: the agent has no such token (and see `require_admin_over`).
        ForbiddenError: see `require_admin_over`.
    """
    await require_admin_over(deps.stores, caller, agent_id)
    if not await deps.stores.agents.revoke_token(agent_id, token_id):
        raise NotFoundError(f"agent {agent_id} has no token {token_id}")
