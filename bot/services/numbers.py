"""Number use cases: create, replace, patch and delete a number's chatbot settings. A change
moves the number's pending after-hours callbacks to its new hours.

Permissions are `bot.domain.auth`'s: admins and the number's managers change it; only admins
delete it. The settings document is validated whole by the store (InvalidInputError naming
the field, nothing stored).
"""

from __future__ import annotations

from typing import Any

from bot.domain import auth
from bot.domain.auth import Caller
from bot.domain.config import StoredNumber
from bot.domain.errors import ForbiddenError, NotFoundError
from bot.runtime.deps import Deps
from bot.runtime.queue import enqueue_reschedule_callbacks


def require_change(caller: Caller, phone_number_id: str) -> None:
    """Raise ForbiddenError unless `caller` changes the number's settings (admins, managers
    of the number)."""
    if not auth.can_change_number(caller, phone_number_id):
        raise ForbiddenError("only admins and managers of this number change its settings")


async def put_number(
    deps: Deps, caller: Caller, phone_number_id: str, document: Any
) -> tuple[StoredNumber, bool]:
    """Create or replace the number's settings with `document` (the API's JSON body) and
    serve it. Idempotent: the same document again keeps the version. Returns the number as
    stored and whether it was created.

    Raises:
        ForbiddenError: see `require_change`.
        InvalidInputError: the document is invalid (naming the field); nothing is stored.
    """
    require_change(caller, phone_number_id)
    stored, created = await deps.stores.numbers.put(
        phone_number_id, document, actor=caller.id, at=deps.clock.now()
    )
    await reschedule_callbacks(deps, stored)
    return stored, created


async def patch_number(
    deps: Deps, caller: Caller, phone_number_id: str, patch: Any
) -> StoredNumber:
    """Apply a JSON Merge Patch to the number's settings; the merged result is validated
    whole. Idempotent: a patch that changes nothing keeps the version.

    Raises:
        ForbiddenError: see `require_change`.
        NotFoundError: the number is not served.
        InvalidInputError: the patch or the merged settings are invalid; nothing is stored.
        ConflictError: `busy`, when concurrent patches outlasted the store's attempts.
    """
    require_change(caller, phone_number_id)
    stored = await deps.stores.numbers.patch(
        phone_number_id, patch, actor=caller.id, at=deps.clock.now()
    )
    await reschedule_callbacks(deps, stored)
    return stored


async def delete_number(deps: Deps, caller: Caller, phone_number_id: str) -> None:
    """Stop serving the number (admins); its audit log stays.

    Raises:
        ForbiddenError: the caller is not an admin.
        NotFoundError: the number was not served.
    """
    if not auth.can_delete_number(caller):
        raise ForbiddenError("only admins delete numbers")
    deleted = await deps.stores.numbers.delete(
        phone_number_id, actor=caller.id, at=deps.clock.now()
    )
    if not deleted:
        raise NotFoundError(f"number {phone_number_id} not found")


async def reschedule_callbacks(deps: Deps, stored: StoredNumber) -> None:
    """Pending after-hours callbacks follow a settings change: one `reschedule_callbacks` job
    per settings version (its job id), so an unchanged version queues nothing new."""
    if await deps.stores.after_hours.has_pending_callbacks(stored.phone_number_id):
        await enqueue_reschedule_callbacks(deps.redis, stored.phone_number_id, stored.version)
