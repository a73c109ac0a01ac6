"""bot.services.after_hours and bot.services.templates without HTTP, against the fake Graph API:
the active message (one send per 24 hours unless forced), the template list (read through
`Deps.graph`, cached, served from the cache when Meta is down) and hand-registered templates."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.domain.clock import FixedClock
from bot.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OutboxError,
)
from bot.runtime.deps import Deps
from bot.services import after_hours, templates
from bot.services.after_hours import ActiveMessageInput
from bot.services.templates import TemplateInput
from bot.settings import Settings
from storage.after_hours import ContactInfo, row_id
from tests.graph_fake import FakeGraphAPI
from tests.services.conftest import ADMIN, OTHER_PNID, PNID, agent, queued_jobs, serve

WABA = "waba-1"
CUSTOMER = "5511987654321"
FOLLOW_UP = {
    "name": "follow_up",
    "language": "pt_BR",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Olá {{1}}, podemos ajudar?"}],
}


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> Settings:
    graph.templates[WABA] = [FOLLOW_UP]
    return make_settings(waba_id=WABA)


def _template_reads(graph: FakeGraphAPI) -> int:
    return sum(1 for r in graph.requests if r.path.endswith("/message_templates"))


async def _row(deps: Deps) -> str:
    """A contact who wrote while the number was closed: the row's id."""
    who = ContactInfo(contact=CUSTOMER, wa_id=CUSTOMER, user_id=None, name="Carla", phone=None)
    rid = row_id(PNID, CUSTOMER, "p1")
    now = deps.clock.now()
    await deps.stores.after_hours.record_contact(
        PNID, rid, who, wamid="wamid.AH1", at=now, now=now, period="p1", next_opening=None,
        requested_return="yes",
    )  # fmt: skip
    return rid


def _body(**changes: object) -> ActiveMessageInput:
    values: dict[str, object] = {"template": "follow_up", "language": "pt_BR"}
    values["variables"] = ["Carla"]
    values.update(changes)
    return ActiveMessageInput.model_validate(values)


async def test_an_active_message_goes_once_per_24_hours_unless_forced(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    rid = await _row(deps)
    sent = await after_hours.send_active_message(deps, ana, PNID, rid, _body())
    assert sent.message_sent is True
    assert sent.active_message is not None
    assert (sent.active_message.template, sent.active_message.by) == ("follow_up", "ana")
    [job] = await queued_jobs(deps)
    assert job.startswith(f"reply:active:{PNID}:")
    with pytest.raises(ConflictError) as again:
        await after_hours.send_active_message(deps, ana, PNID, rid, _body())
    assert again.value.code == "already_sent"
    await after_hours.send_active_message(deps, ana, PNID, rid, _body(force=True))
    assert len(await queued_jobs(deps)) == 2
    [listed] = await after_hours.contacts(deps, ana, PNID, message_sent=True)
    assert listed.id == rid
    assert await after_hours.contacts(deps, ana, PNID, message_sent=False) == []


async def test_an_active_message_names_what_is_wrong(deps: Deps) -> None:
    await serve(deps)
    await serve(deps, OTHER_PNID)
    ana = await agent(deps, "ana")
    zed = await agent(deps, "zed", (OTHER_PNID,))
    rid = await _row(deps)
    with pytest.raises(InvalidInputError) as unknown:
        await after_hours.send_active_message(deps, ana, PNID, rid, _body(template="nope"))
    assert unknown.value.field == "template"
    with pytest.raises(InvalidInputError) as count:
        await after_hours.send_active_message(deps, ana, PNID, rid, _body(variables=[]))
    assert count.value.field == "variables"
    with pytest.raises(ForbiddenError):
        await after_hours.send_active_message(deps, zed, PNID, rid, _body())
    with pytest.raises(NotFoundError):
        await after_hours.send_active_message(deps, ana, PNID, "f" * 20, _body())
    assert await queued_jobs(deps) == []
    [row] = await after_hours.contacts(deps, ana, PNID)
    assert row.message_sent is False  # nothing claimed by the refused attempts


async def test_the_graph_list_is_cached_and_served_while_meta_is_down(
    deps: Deps, graph: FakeGraphAPI, clock: FixedClock
) -> None:
    first = await templates.available(deps)
    assert [t.name for t in first.templates] == ["follow_up"]
    await templates.available(deps)
    assert _template_reads(graph) == 1  # fresh for an hour
    clock.advance(templates.FRESH)
    graph.fail_next(500, times=5)
    stale = await templates.available(deps)
    assert _template_reads(graph) == 3  # read again (two attempts), in vain
    assert [t.name for t in stale.templates] == ["follow_up"]
    assert stale.copy is not None
    assert stale.copy.fetched_at <= clock.now() - templates.FRESH  # the old copy serves
    with pytest.raises(OutboxError):
        await templates.refresh(deps, ADMIN)


async def test_templates_are_read_only_through_deps_graph(deps: Deps, graph: FakeGraphAPI) -> None:
    """Without a Graph client in `Deps` (no access token), nothing is read from Meta, whatever
    the settings say: no service builds a client of its own."""
    without = dataclasses.replace(deps, graph=None)
    assert (await templates.available(without)).copy is None
    assert await templates.find_template(without, "follow_up", "pt_BR") is None
    with pytest.raises(ConflictError) as no_waba:
        await templates.refresh(without, ADMIN)
    assert no_waba.value.code == "no_waba"
    assert _template_reads(graph) == 0


async def test_an_unknown_name_rereads_meta_at_most_once_a_minute(
    deps: Deps, graph: FakeGraphAPI, clock: FixedClock
) -> None:
    await templates.available(deps)
    graph.templates[WABA] = [FOLLOW_UP, {**FOLLOW_UP, "name": "thanks"}]
    assert await templates.find_template(deps, "thanks", "pt_BR") is None  # copy too new
    assert _template_reads(graph) == 1
    clock.advance(timedelta(minutes=1))
    found = await templates.find_template(deps, "thanks", "pt_BR")
    assert found is not None
    assert found.name == "thanks"
    assert _template_reads(graph) == 2


async def test_refresh_is_for_admins_and_managers(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    mara = await agent(deps, "mara", role="manager")
    with pytest.raises(ForbiddenError):
        await templates.refresh(deps, ana)
    assert [t.name for t in (await templates.refresh(deps, mara)).templates] == ["follow_up"]


async def test_registered_templates_are_for_admins_with_positional_placeholders(
    deps: Deps,
) -> None:
    await serve(deps)
    mara = await agent(deps, "mara", role="manager")
    body = TemplateInput(body="Oi {{1}}!")
    with pytest.raises(ForbiddenError):
        await templates.register(deps, mara, "retorno", "pt_BR", body)
    with pytest.raises(InvalidInputError) as named:
        await templates.register(deps, ADMIN, "retorno", "pt_BR", TemplateInput(body="Oi {{n}}"))
    assert named.value.field == "body"
    with pytest.raises(InvalidInputError) as bad_name:
        await templates.register(deps, ADMIN, "Retorno!", "pt_BR", body)
    assert bad_name.value.field == "name"
    template, created = await templates.register(deps, ADMIN, "retorno", "pt_BR", body)
    assert created
    assert template.variables == 1
    assert (await templates.register(deps, ADMIN, "retorno", "pt_BR", body))[1] is False
    assert await templates.find_template(deps, "retorno", "pt_BR") == template
    await templates.unregister(deps, ADMIN, "retorno", "pt_BR")
    with pytest.raises(NotFoundError):
        await templates.unregister(deps, ADMIN, "retorno", "pt_BR")
