"""GraphOutbox against a local fake of the Graph API: retries only what is transient."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.domain import bodies
from bot.domain.errors import PermanentError, TransientError
from bot.runtime.outbox import GraphOutbox
from tests.graph_fake import FakeGraphAPI


@pytest.fixture(name="outbox")
async def fixture_outbox(graph: FakeGraphAPI) -> AsyncIterator[GraphOutbox]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session:
        yield GraphOutbox(
            session, base_url=graph.url, version="v24.0", token="tok", attempts=3, backoff_s=0.01
        )


BODY = bodies.text("+5511987654321", "Oi")


async def test_send_posts_meta_body_with_bearer_token(
    outbox: GraphOutbox, graph: FakeGraphAPI
) -> None:
    message_id = await outbox.send("1000", BODY)
    assert message_id.startswith("wamid.FAKE")
    [request] = graph.requests
    assert request.path == "/v24.0/1000/messages"
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.json == BODY


@pytest.mark.parametrize(
    ("status", "code"), [(500, None), (503, 131016), (429, 130429), (400, 4), (400, 131056)]
)
async def test_transient_failures_are_retried_then_succeed(
    outbox: GraphOutbox, graph: FakeGraphAPI, status: int, code: int | None
) -> None:
    graph.fail_next(status, code, times=2)
    assert (await outbox.send("1000", BODY)).startswith("wamid.FAKE")
    assert len(graph.requests) == 3


async def test_persistent_transient_failure_surfaces_as_transient_error(
    outbox: GraphOutbox, graph: FakeGraphAPI
) -> None:
    graph.fail_next(429, 130429, times=5)
    with pytest.raises(TransientError) as info:
        await outbox.send("1000", BODY)
    assert info.value.code == 130429
    assert len(graph.requests) == 3  # bounded: the job retries later, not this call


async def test_timeout_is_transient(outbox: GraphOutbox, graph: FakeGraphAPI) -> None:
    graph.fail_next(200, 0, times=3, delay_s=2)
    with pytest.raises(TransientError):
        await outbox.send("1000", BODY)


@pytest.mark.parametrize("code", [131047, 131026, 131051, 100, 190, 132001])
async def test_permanent_errors_are_not_retried(
    outbox: GraphOutbox, graph: FakeGraphAPI, code: int
) -> None:
    graph.fail_next(400, code)
    with pytest.raises(PermanentError) as info:
        await outbox.send("1000", BODY)
    assert info.value.code == code
    assert len(graph.requests) == 1


def test_bodies_stay_within_meta_limits() -> None:
    long = "x" * 5000
    assert len(bodies.text("+1", long)["text"]["body"]) == bodies.TEXT_MAX
    buttons = bodies.reply_buttons(
        "+1", long, [("notify_next_service_hour", "Avise-me quando abrir")]
    )
    interactive = buttons["interactive"]
    assert len(interactive["body"]["text"]) == bodies.INTERACTIVE_BODY_MAX
    assert len(interactive["action"]["buttons"][0]["reply"]["title"]) <= bodies.BUTTON_TITLE_MAX
    assert interactive["action"]["buttons"][0]["reply"]["id"] == "notify_next_service_hour"
    with pytest.raises(ValueError, match="1 to 3"):
        bodies.reply_buttons("+1", "b", [("a", "a")] * 4)


def test_recipient_prefers_e164_then_bsuid() -> None:
    assert bodies.recipient("5511987654321") == "+5511987654321"
    assert bodies.recipient("", "BR.1234") == "BR.1234"
    with pytest.raises(ValueError, match="recipient"):
        bodies.recipient(None, None)


def test_template_body_uses_meta_form() -> None:
    body = bodies.template("+1", "callback", "pt_BR", ["Ana", "segunda"])
    assert body["template"] == {
        "name": "callback",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Ana"},
                    {"type": "text", "text": "segunda"},
                ],
            }
        ],
    }
