"""bot.services.agents and bot.services.numbers without HTTP: a status change drains the queues
it should, a settings change reschedules pending callbacks, and who may do either."""

from __future__ import annotations

import pytest

from bot.domain.auth import Caller
from bot.domain.config import AgentInput
from bot.domain.errors import ConflictError, ForbiddenError, NotFoundError
from bot.runtime.deps import Deps
from bot.services import agents, numbers
from storage.after_hours import ContactInfo
from tests.services.conftest import ADMIN, OTHER_PNID, PNID, agent, queued_jobs, serve


async def test_going_online_drains_each_of_the_agents_numbers(deps: Deps) -> None:
    await serve(deps)
    await serve(deps, OTHER_PNID)
    ana = await agent(deps, "ana", (PNID, OTHER_PNID), status="break")
    record = await agents.visible_agent(deps.stores, ana, "ana")
    assert await queued_jobs(deps) == []
    online = await agents.set_status(deps, ana, record, "online")
    assert online.status == "online"
    drains = [j for j in await queued_jobs(deps) if j.startswith("drain:")]
    assert sorted(j.split(":")[1] for j in drains) == sorted([PNID, OTHER_PNID])


async def test_a_break_drains_nothing(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana", status="online")
    record = await agents.visible_agent(deps.stores, ana, "ana")
    assert (await agents.set_status(deps, ana, record, "break")).status == "break"
    assert await queued_jobs(deps) == []


async def test_a_manager_sets_only_the_status_of_agents_all_of_whose_numbers_they_manage(
    deps: Deps,
) -> None:
    await serve(deps)
    await serve(deps, OTHER_PNID)
    mara = await agent(deps, "mara", (PNID,), role="manager")
    await agent(deps, "ana", (PNID,), status="break")
    await agent(deps, "bob", (PNID, OTHER_PNID), status="break")
    ana = await agents.visible_agent(deps.stores, mara, "ana")
    assert (await agents.set_status(deps, mara, ana, "online")).status == "online"
    bob = await agents.visible_agent(deps.stores, mara, "bob")
    with pytest.raises(ForbiddenError):
        await agents.set_status(deps, mara, bob, "online")


async def test_a_managers_status_change_is_refused_when_the_agents_numbers_changed(
    deps: Deps,
) -> None:
    """The right was checked against the numbers read; an admin's change in between makes the
    write refuse (409 `agent_changed`) rather than act on a stale right."""
    await serve(deps)
    await serve(deps, OTHER_PNID)
    mara = await agent(deps, "mara", (PNID,), role="manager")
    await agent(deps, "ana", (PNID,), status="break")
    seen = await agents.visible_agent(deps.stores, mara, "ana")
    moved = AgentInput(name="Ana", numbers=(PNID, OTHER_PNID))
    await agents.put_agent(deps, ADMIN, "ana", moved)
    with pytest.raises(ConflictError) as refused:
        await agents.set_status(deps, mara, seen, "online")
    assert refused.value.code == "agent_changed"


async def test_only_admins_manage_agents_and_tokens(deps: Deps) -> None:
    await serve(deps)
    mara = await agent(deps, "mara", role="manager")
    await agent(deps, "ana")
    stranger = Caller(id="zed", role="agent", numbers=frozenset({OTHER_PNID}))
    with pytest.raises(ForbiddenError):
        await agents.put_agent(deps, mara, "new", AgentInput(name="New", numbers=(PNID,)))
    with pytest.raises(ForbiddenError):  # mara sees ana
        await agents.issue_token(deps, mara, "ana")
    with pytest.raises(NotFoundError):  # zed does not
        await agents.delete_agent(deps, stranger, "ana")
    issued = await agents.issue_token(deps, ADMIN, "ana")
    assert issued.agent_id == "ana"
    assert [t.token_id for t in await deps.stores.agents.tokens("ana")] == [issued.token_id]
    await agents.revoke_token(deps, ADMIN, "ana", issued.token_id)
    with pytest.raises(NotFoundError):
        await agents.revoke_token(deps, ADMIN, "ana", issued.token_id)
    await agents.delete_agent(deps, ADMIN, "ana")
    with pytest.raises(NotFoundError):
        await agents.delete_agent(deps, ADMIN, "ana")


async def _pending_callback(deps: Deps) -> None:
    who = ContactInfo(contact="5511987654321", wa_id="5511987654321", user_id=None, name=None,
                      phone=None)  # fmt: skip
    now = deps.clock.now()
    await deps.stores.after_hours.request_callback(PNID, "a" * 20, who, period="p", due=now,
                                                   now=now)  # fmt: skip


async def test_a_settings_change_reschedules_pending_callbacks_once_per_version(
    deps: Deps,
) -> None:
    await serve(deps)
    mara = await agent(deps, "mara", role="manager")
    patched = await numbers.patch_number(deps, mara, PNID, {"language": "en"})
    assert await queued_jobs(deps) == []  # nothing pending, nothing to move
    await _pending_callback(deps)
    patched = await numbers.patch_number(deps, mara, PNID, {"language": "es"})
    same = await numbers.patch_number(deps, mara, PNID, {"language": "es"})
    assert same.version == patched.version
    assert await queued_jobs(deps) == [f"reschedule:{PNID}:{patched.version}"]
    replaced, created = await numbers.put_number(
        deps, mara, PNID, {"timezone": "UTC", "service_hours": {"always_open": True}}
    )
    assert not created
    assert f"reschedule:{PNID}:{replaced.version}" in await queued_jobs(deps)


async def test_number_changes_are_for_admins_and_its_managers(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    mara = await agent(deps, "mara", role="manager")
    with pytest.raises(ForbiddenError):
        await numbers.patch_number(deps, ana, PNID, {"language": "en"})
    with pytest.raises(ForbiddenError):
        await numbers.put_number(deps, mara, OTHER_PNID, {"timezone": "UTC"})
    with pytest.raises(ForbiddenError):
        await numbers.delete_number(deps, mara, PNID)
    await numbers.delete_number(deps, ADMIN, PNID)
    with pytest.raises(NotFoundError):
        await numbers.delete_number(deps, ADMIN, PNID)
