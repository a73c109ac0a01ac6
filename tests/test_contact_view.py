"""The pure parts of the contact-centred view: the resume case (seed "Desk Conversations",
points 3-5) and the merged, searchable conversation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.contact_view import (
    RESUME_CASES,
    ServiceState,
    TicketState,
    merge,
    resume,
    resume_case,
)
from bot.domain.models import Contact, TimelineEntry
from bot.domain.notes import Note

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
AGENTS = st.sampled_from(["ana", "bob", None])
SERVICE = st.sampled_from(["none", "waiting", "open"])


def test_the_five_cases() -> None:
    def case(service: ServiceState, agent: str | None, *, history: bool, window: bool) -> str:
        return resume_case(
            has_history=history,
            service=service,
            agent_id=agent,
            caller_id="ana",
            window_open=window,
        )

    assert case("open", "ana", history=True, window=True) == "reply"
    assert case("open", "ana", history=True, window=False) == "window_expired"
    assert case("open", "bob", history=True, window=True) == "served_by_another"
    assert case("open", "bob", history=False, window=False) == "served_by_another"
    assert case("waiting", None, history=True, window=True) == "not_in_service"
    assert case("none", None, history=True, window=False) == "not_in_service"
    assert case("none", None, history=False, window=False) == "no_history"


@given(history=st.booleans(), service=SERVICE, agent=AGENTS, caller=AGENTS, window=st.booleans())
def test_resume_case_invariants(
    history: bool, service: ServiceState, agent: str | None, caller: str | None, window: bool
) -> None:
    caller_id = caller or "carla"
    case = resume_case(
        has_history=history,
        service=service,
        agent_id=agent,
        caller_id=caller_id,
        window_open=window,
    )
    assert case in RESUME_CASES
    held = service == "open" and agent is not None
    # Free text only for the holder, within the window.
    assert (case == "reply") == (held and agent == caller_id and window)
    # Sending is disabled exactly when someone else holds the ticket.
    assert (case == "served_by_another") == (held and agent != caller_id)
    if not held:
        assert case == ("not_in_service" if history else "no_history")
    contact = Contact(phone_number_id="1", key="k", wa_id="5511", first_seen=T0)
    ticket = TicketState(state=service, ticket_id="t1", agent_id=agent, agent_name="Ana")
    shown = resume(case, contact, ticket)
    # Exactly one way forward is offered, except to another agent's customer.
    assert shown.can_reply + shown.active_message == (case != "served_by_another")
    assert (shown.transfer_ticket_id == "t1") == (case == "served_by_another")


def _entry(
    i: int, text: str | None, direction: str = "in", kind: str | None = None
) -> TimelineEntry:
    return TimelineEntry(
        id=f"m{i}",
        direction="in" if direction == "in" else "out",
        at=T0 + timedelta(minutes=i),
        kind=kind,
        text=text,
    )


def test_merge_interleaves_notes_marks_automatic_messages_and_searches_folded() -> None:
    entries = [
        _entry(0, "Olá, quero um pedido"),
        _entry(2, "Bem-vindo!", "out", "welcome"),
        _entry(3, "Seu PEDIDO saiu", "out", "agent"),
        _entry(4, None),  # an image without caption
    ]
    notes = [Note(id="n1", author="ana", at=T0 + timedelta(minutes=1), text="pédido antigo")]
    items = merge(entries, notes, None)
    assert [i.id for i in items] == ["m0", "n1", "m2", "m3", "m4"]
    assert [i.automatic for i in items] == [False, False, True, False, False]
    assert [i.id for i in merge(entries, notes, "  Pedído ")] == ["m0", "n1", "m3"]
    assert [i.id for i in merge(entries, notes, "   ")] == [i.id for i in items]


@given(st.lists(st.text(max_size=12), max_size=8), st.text(max_size=4))
def test_a_search_keeps_a_subset_in_order(texts: list[str], q: str) -> None:
    entries = [_entry(i, t) for i, t in enumerate(texts)]
    everything = merge(entries, [], None)
    found = merge(entries, [], q)
    assert [i.id for i in found] == [i.id for i in everything if i in found]
