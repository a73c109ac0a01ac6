"""The routing rule, in Python: which agent gets a ticket (pure, no I/O).

storage/tickets.py applies this rule inside a Lua script (`pick`), where it must run to be
atomic; this module is its specification, which the property tests check the script against.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Reason = Literal["portfolio", "balance"]


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """An agent attached to the ticket's number, as routing sees it.

    `load` is how many tickets occupy the agent's slots; `last_assigned` orders agents by their
    last assignment (smaller = longer ago; 0 = never).
    """

    id: str
    status: str
    slots: int
    load: int
    last_assigned: int

    @property
    def has_room(self) -> bool:
        """Online with a free slot: agents on break or invisible receive nothing."""
        return self.status == "online" and self.load < self.slots


def choose_agent(
    agents: Iterable[AgentLoad], *, owner: str | None = None, excluded: str | None = None
) -> tuple[str, Reason] | None:
    """The agent a ticket goes to, and why; None when it has to wait.

    1. The contact's portfolio `owner`, when among `agents` with room (and not `excluded`).
    2. Else the agent with room holding the fewest tickets; ties go to the one whose last
       assignment is oldest, then to the smallest id.
    `excluded` (the agent who just gave the ticket away or did not answer it) is never chosen.
    """
    candidates = [a for a in agents if a.has_room and a.id != excluded]
    if owner is not None and any(a.id == owner for a in candidates):
        return owner, "portfolio"
    if not candidates:
        return None
    best = min(candidates, key=lambda a: (a.load, a.last_assigned, a.id))
    return best.id, "balance"
