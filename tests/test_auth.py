"""bot.domain.auth: tokens, bearer headers and the permission rules of each role (pure)."""

from __future__ import annotations

import pytest

from bot.domain import auth
from bot.domain.auth import Caller

ADMIN = Caller("root", "admin")
MANAGER = Caller("mara", "manager", frozenset({"n1"}))
AGENT = Caller("ana", "agent", frozenset({"n1"}))
OTHER_AGENT = Caller("bob", "agent", frozenset({"n2"}))


def test_tokens_are_random_prefixed_and_hashed_to_hex() -> None:
    tokens = {auth.new_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert token.startswith(auth.TOKEN_PREFIX)
    assert len(token) >= len(auth.TOKEN_PREFIX) + 43  # 32 random bytes, base64url
    digest = auth.hash_token(token)
    assert digest == auth.hash_token(token)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert token not in digest
    assert auth.token_id(digest) == digest[: auth.TOKEN_ID_CHARS]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("BEARER abc", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert auth.bearer_token(header) == token


def test_bootstrap_token_needs_a_configured_admin_token() -> None:
    assert auth.is_bootstrap_token("s3cret", "s3cret")
    assert not auth.is_bootstrap_token("s3cret", "other")
    assert not auth.is_bootstrap_token("", None)
    assert not auth.is_bootstrap_token("", "")


def test_bootstrap_admin_id_cannot_be_an_agent_id() -> None:
    from bot.domain.config import is_valid_id

    assert not is_valid_id(auth.BOOTSTRAP_ADMIN_ID)
    assert auth.BOOTSTRAP_ADMIN.is_admin


@pytest.mark.parametrize(
    ("caller", "read", "change", "delete", "audit"),
    [
        (ADMIN, True, True, True, True),
        (MANAGER, True, True, False, True),
        (AGENT, True, False, False, False),
        (OTHER_AGENT, False, False, False, False),
    ],
)
def test_number_permissions(
    caller: Caller, read: bool, change: bool, delete: bool, audit: bool
) -> None:
    assert auth.can_read_number(caller, "n1") is read
    assert auth.can_change_number(caller, "n1") is change
    assert auth.can_delete_number(caller) is delete
    assert auth.can_read_audit(caller, "n1") is audit


def test_a_manager_changes_only_their_own_numbers() -> None:
    assert not auth.can_change_number(MANAGER, "n2")
    assert not auth.can_read_audit(MANAGER, "n2")


@pytest.mark.parametrize(
    ("caller", "agent_id", "numbers", "read", "set_status"),
    [
        (ADMIN, "bob", ["n2"], True, True),
        (ADMIN, "zed", ["n2", "n1"], True, True),
        (AGENT, "ana", ["n1"], True, True),  # themself
        (AGENT, "ana", ["n1", "n2"], True, True),  # themself, on numbers they do not manage
        (AGENT, "zed", ["n1"], False, False),  # a colleague is not theirs to change
        (MANAGER, "ana", ["n1"], True, True),
        (MANAGER, "bob", ["n2"], False, False),
        # Shared with a number they do not manage: seen, but not theirs to take offline.
        (MANAGER, "zed", ["n2", "n1"], True, False),
        (MANAGER, "zed", [], False, False),
        (OTHER_AGENT, "ana", ["n1"], False, False),
    ],
)
def test_who_reads_an_agent_and_sets_its_status(
    caller: Caller, agent_id: str, numbers: list[str], read: bool, set_status: bool
) -> None:
    assert auth.can_read_agent(caller, agent_id, numbers) is read
    assert auth.can_set_status(caller, agent_id, numbers) is set_status


def test_a_manager_of_every_number_of_a_shared_agent_sets_its_status() -> None:
    both = Caller(id="mia", role="manager", numbers=frozenset({"n1", "n2"}))
    assert auth.can_set_status(both, "zed", ["n2", "n1"])


@pytest.mark.parametrize(
    ("caller", "agent_id", "shown"),
    [
        (ADMIN, "zed", ("n2", "n1", "n3")),
        (Caller(id="zed", role="agent", numbers=frozenset({"n1"})), "zed", ("n2", "n1", "n3")),
        (MANAGER, "zed", ("n1",)),
        (Caller(id="mia", role="manager", numbers=frozenset({"n1", "n3"})), "zed", ("n1", "n3")),
    ],
)
def test_only_admins_and_the_agent_see_all_its_numbers(
    caller: Caller, agent_id: str, shown: tuple[str, ...]
) -> None:
    assert auth.visible_numbers(caller, agent_id, ["n2", "n1", "n3"]) == shown


def test_only_admins_manage_agents() -> None:
    assert auth.can_manage_agents(ADMIN)
    assert not auth.can_manage_agents(MANAGER)
    assert not auth.can_manage_agents(AGENT)
