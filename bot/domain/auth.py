"""Who may do what in the HTTP API: roles, bearer tokens and permission checks (pure, no I/O).

Roles, from most to least powerful:

- `admin`: everything, on every number (the bootstrap `DESKLINE_ADMIN_TOKEN` is an admin).
- `manager`: reads and changes the settings of their numbers, reads their audit log, reads the
  agents of their numbers (seeing, of an agent's numbers, only the ones they manage) and sets
  the status of the agents all of whose numbers they manage.
- `agent`: reads the settings of their numbers and sets their own status.

Agent tokens are random (256 bits) and stored only as their SHA-256 hex digest. A slow KDF
buys nothing for a random 256-bit secret, and a fast digest lets Redis index tokens by hash,
so a lookup never compares secrets byte by byte (only the bootstrap token is compared, with
`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

Role = Literal["agent", "manager", "admin"]
ROLES: Final[tuple[Role, ...]] = ("agent", "manager", "admin")

# Not a valid agent id (ids are [A-Za-z0-9_.-]), so it can never collide with one.
BOOTSTRAP_ADMIN_ID: Final = "@admin"
# Recognisable in logs and secret scanners; the random part carries the strength.
TOKEN_PREFIX: Final = "dlt_"  # noqa: S105 -- a prefix, not a secret
# The first characters of the hash name a token (to list or revoke it) without revealing it.
TOKEN_ID_CHARS: Final = 12


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of one request.

    `numbers` are the phone_number_ids the caller is attached to; an admin reaches every number
    whatever this holds.
    """

    id: str
    role: Role
    numbers: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def attached_to(self, phone_number_id: str) -> bool:
        return self.is_admin or phone_number_id in self.numbers

    def shares_a_number_with(self, numbers: Iterable[str]) -> bool:
        return not self.numbers.isdisjoint(numbers)


BOOTSTRAP_ADMIN: Final = Caller(id=BOOTSTRAP_ADMIN_ID, role="admin")


def new_token() -> str:
    """A fresh bearer token; shown once to whoever requested it, stored only as its hash."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token_hash: str) -> str:
    """The public name of a token: a prefix of its hash."""
    return token_hash[:TOKEN_ID_CHARS]


def is_bootstrap_token(presented: str, admin_token: str | None) -> bool:
    """True when `presented` is the configured bootstrap admin token (constant-time compare)."""
    if not admin_token:
        return False
    return hmac.compare_digest(presented.encode(), admin_token.encode())


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is none."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


# --- numbers ------------------------------------------------------------------------------


def can_read_number(caller: Caller, phone_number_id: str) -> bool:
    """Settings, service hours: everybody attached to the number."""
    return caller.attached_to(phone_number_id)


def can_change_number(caller: Caller, phone_number_id: str) -> bool:
    """PUT/PATCH settings: admins, and managers of that number."""
    return caller.is_admin or (caller.role == "manager" and phone_number_id in caller.numbers)


def can_delete_number(caller: Caller) -> bool:
    """Stopping to serve a number is an admin decision: managers only tune its settings."""
    return caller.is_admin


def can_read_audit(caller: Caller, phone_number_id: str) -> bool:
    """The audit log of a number: admins, and managers of that number (they make the changes)."""
    return can_change_number(caller, phone_number_id)


# --- agents -------------------------------------------------------------------------------


def can_manage_agents(caller: Caller) -> bool:
    """Create, replace or delete agents; issue and revoke their tokens: admins only.

    A manager who could edit agents could give themself any number or the admin role.
    """
    return caller.is_admin


def can_read_agent(caller: Caller, agent_id: str, agent_numbers: Iterable[str]) -> bool:
    """An agent's record: admins, the agent themself, and managers of one of their numbers."""
    if caller.is_admin or caller.id == agent_id:
        return True
    return caller.role == "manager" and caller.shares_a_number_with(agent_numbers)


def can_set_status(caller: Caller, agent_id: str, agent_numbers: Iterable[str]) -> bool:
    """Online / break / invisible: the agent themself, an admin, or a manager of ALL the
    agent's numbers.

    A status is one for every number the agent serves: going invisible takes them out of every
    number's routing and sends their tickets back to every queue. A manager of only some of
    those numbers would decide for the others' managers too, so they may not.
    """
    if caller.is_admin or caller.id == agent_id:
        return True
    numbers = frozenset(agent_numbers)
    return caller.role == "manager" and bool(numbers) and numbers <= caller.numbers


def visible_numbers(caller: Caller, agent_id: str, agent_numbers: Iterable[str]) -> tuple[str, ...]:
    """The numbers of an agent the caller may know about, in the agent's order.

    Admins and the agent themself see them all; anybody else (a manager reading the agents of
    their numbers) only those they are attached to: that an agent also serves another
    company's number is that company's business.
    """
    numbers = tuple(agent_numbers)
    if caller.is_admin or caller.id == agent_id:
        return numbers
    return tuple(n for n in numbers if n in caller.numbers)
