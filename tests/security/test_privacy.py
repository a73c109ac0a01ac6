"""Privacy: a customer's phone number and what they wrote never reach the logs or /metrics.

Two captures of the same end-to-end flow (a message after hours, one in hours, the agent's
reply, its delivery status, a search by phone): structlog's events in process
(`capture_logs`, through deskline's redaction processor), and the JSON lines the real
`python -m bot web` and `python -m bot worker` processes print, which include arq's, aiohttp's
and redis' own loggers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import structlog
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.domain.clock import FixedClock
from bot.simulate import build_payload
from tests.conftest import ADMIN_TOKEN
from tests.faults.harness import CLOSED, OPEN, Cluster, drained, until
from tests.webhooks import post_webhook

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PHONE = "5511987654321"
NAME = "Maria Sigilosa"
SECRET = "texto-sigiloso-4821"
AGENT_SECRET = "resposta-sigilosa-7730"
# Every way the number could show: whole, national, local, with its punctuation.
PHONE_FORMS = (PHONE, "11987654321", "987654321", "98765-4321", "(11) 98765")

CLOSED_NUMBER = {
    "timezone": "America/Sao_Paulo",
    "language": "en",
    "service_hours": {"weekly": {}},
    "after_hours": {"message": "We are closed.", "notify_next_service_hour": True},
}
OPEN_NUMBER = {"timezone": "UTC", "language": "en", "service_hours": {"always_open": True}}


def leaks(text: str) -> list[str]:
    """The personal data found in `text`: phone number forms, the customer's and the agent's
    words, the customer's name."""
    found = [form for form in PHONE_FORMS if form in text]
    found += [word for word in (SECRET, AGENT_SECRET, NAME) if word in text]
    return found


def _message(pnid: str, wamid: str, text: str) -> dict[str, Any]:
    return build_payload(phone_number_id=pnid, wa_id=PHONE, name=NAME, text=text, message_id=wamid)


def _status(message_id: str) -> dict[str, Any]:
    status = {
        "id": message_id,
        "status": "delivered",
        "timestamp": str(int(datetime.now(UTC).timestamp())),
        "recipient_id": PHONE,
    }
    value = {"metadata": {"phone_number_id": OPEN}, "statuses": [status]}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}],
    }


async def test_structlog_events_of_a_whole_flow_carry_no_phone_number_nor_text(
    client: TestClient[Any, Any], clock: FixedClock, make_worker: Callable[..., Worker]
) -> None:
    clock.at = datetime.now(UTC)
    # Raw events, before deskline's redaction processor: the code does not even hand personal
    # data to the logger (the processor is the second line, checked on real output below).
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as events:
        for pnid, body in ((CLOSED, CLOSED_NUMBER), (OPEN, OPEN_NUMBER)):
            assert (await client.put(f"/api/v1/numbers/{pnid}", json=body, headers=ADMIN)).ok
        agent = {"name": "Ana", "numbers": [OPEN], "slots": 3, "role": "agent"}
        assert (await client.put("/api/v1/agents/ana", json=agent, headers=ADMIN)).ok
        token = (await (await client.post("/api/v1/agents/ana/tokens", headers=ADMIN)).json())[
            "token"
        ]
        ana = {"Authorization": f"Bearer {token}"}
        online = await client.put(
            "/api/v1/agents/ana/status", json={"status": "online"}, headers=ana
        )
        assert online.ok
        for pnid, wamid in ((CLOSED, "wamid.PRIV1"), (OPEN, "wamid.PRIV2")):
            resp = await post_webhook(client, _message(pnid, wamid, f"{SECRET} cpf 123.456.789-00"))
            assert resp.status == 200
        await make_worker().run_check()
        page = await (await client.get(f"/api/v1/numbers/{OPEN}/tickets", headers=ana)).json()
        [ticket] = page["items"]
        reply = await client.post(
            f"/api/v1/tickets/{ticket['id']}/messages", json={"text": AGENT_SECRET}, headers=ana
        )
        assert reply.status == 202
        await make_worker().run_check()
        detail = await (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=ana)).json()
        sent = [m for m in detail["messages"] if m["direction"] == "out"]
        assert sent
        assert (await post_webhook(client, _status(sent[0]["id"]))).status == 200
        await make_worker().run_check()
        found = await client.get(f"/api/v1/contacts?q={PHONE}", headers=ana)
        assert found.status == 200
        assert (
            await client.get(f"/api/v1/numbers/{OPEN}/contacts/{PHONE}/timeline", headers=ana)
        ).ok
    assert len(events) >= 10  # the flow did log
    leaked = {
        event["event"]: found
        for event in events
        if (found := leaks(json.dumps(event, default=str)))
    }
    assert not leaked, leaked


async def test_metrics_expose_no_personal_data(client: TestClient[Any, Any]) -> None:
    """Routes are labelled by their pattern, never the path a caller typed."""
    await client.get(f"/api/v1/numbers/{OPEN}/contacts/{PHONE}/timeline", headers=ADMIN)
    await client.get(f"/api/v1/contacts?q={PHONE}", headers=ADMIN)
    await client.get(f"/nowhere/{PHONE}/{SECRET}")
    await post_webhook(client, _message(OPEN, "wamid.PRIV3", SECRET))
    text = await (await client.get("/metrics")).text()
    assert "deskline_http_requests_total" in text
    assert leaks(text) == []


async def test_the_json_logs_of_real_processes_carry_no_phone_number_nor_text(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    """The same flow against `python -m bot web` and `python -m bot worker`, at DEBUG level:
    every line they print (ours, arq's, aiohttp's, redis') is searched."""
    cluster.graph.fail_next(400, 131047)  # one reply refused for good: the failure path logs
    cluster.defaults["log_level"] = "DEBUG"
    await cluster.start_web()
    for pnid, body in ((CLOSED, CLOSED_NUMBER), (OPEN, OPEN_NUMBER)):
        assert (await cluster.api("PUT", f"/numbers/{pnid}", body))[0] in (200, 201)
    agent = {"name": "Ana", "numbers": [OPEN], "slots": 3, "role": "agent"}
    assert (await cluster.api("PUT", "/agents/ana", agent))[0] in (200, 201)
    token = (await cluster.api("POST", "/agents/ana/tokens"))[1]["token"]
    ana = {"Authorization": f"Bearer {token}"}
    assert (await cluster.api("PUT", "/agents/ana/status", {"status": "online"}, ana))[0] == 200
    await cluster.start_worker()
    # The first after-hours reply is refused (131047); a second customer's goes out.
    other = "5521912345678"
    for pnid, wamid, wa_id in (
        (CLOSED, "wamid.PRIV1", PHONE),
        (OPEN, "wamid.PRIV2", PHONE),
        (CLOSED, "wamid.PRIV4", other),
    ):
        payload = build_payload(
            phone_number_id=pnid, wa_id=wa_id, name=NAME, text=SECRET, message_id=wamid
        )
        assert (await cluster.post_webhook(payload))[0] == 200

    tickets: list[dict[str, Any]] = []

    async def routed() -> bool:
        page = (await cluster.api("GET", f"/numbers/{OPEN}/tickets", None, ana))[1]
        tickets[:] = [t for t in page["items"] if t["agent_id"]]
        return bool(tickets)

    await until(routed, within=30, what="the ticket routed to ana")
    status, _ = await cluster.api(
        "POST", f"/tickets/{tickets[0]['id']}/messages", {"text": AGENT_SECRET}, ana
    )
    assert status == 202

    def agent_reply() -> list[str]:
        return [mid for key, mid in cluster.graph.accepted if AGENT_SECRET in key]

    await until(lambda: bool(agent_reply()), within=30, what="the agent's reply sent")
    [message_id] = agent_reply()
    assert (await cluster.post_webhook(_status(message_id)))[0] == 200
    assert (await cluster.api("GET", f"/contacts?q={PHONE}", None, ana))[0] == 200
    await until(lambda: drained(direct), within=30, what="every job done")
    for child in cluster.children:
        cluster.stop(child)
    lines = [line for child in cluster.children for line in child.output().splitlines()]
    # They did log, at DEBUG, the very steps that handle the phone number and the texts.
    logged = "\n".join(lines)
    for event in ("webhook_accepted", "inbound_processed", "reply_sent"):
        assert f'"{event}"' in logged, event
    leaked = [line[:300] for line in lines if leaks(line)]
    assert not leaked, leaked


def test_arq_job_start_lines_show_no_job_arguments(capsys: Any) -> None:
    import logging

    from bot.runtime.logs import configure_logging

    configure_logging("INFO", "json", cache_logger=False)
    try:
        arguments = repr({"name": NAME, "body": {"text": {"body": AGENT_SECRET}}})
        logging.getLogger("arq.worker").info(
            "%6.2fs → %s(%s)%s", 0.01, "reply:x:send_reply", arguments, " try=2"
        )
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:  # back to the suite's set-up (tests/conftest.py), on the real stderr
        with capsys.disabled():
            configure_logging("DEBUG", "json", cache_logger=False)
    assert json.loads(line)["event"] == "  0.01s → reply:x:send_reply(…) try=2"
    assert leaks(line) == []
