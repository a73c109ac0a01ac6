"""FakeGraphAPI: a local aiohttp server speaking the Graph API's HTTP protocol.

It records every request it receives and can be scripted to answer with Graph error bodies,
5xx or delays, so that tests exercise our real HTTP client against a real socket.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Scripted:
    status: int
    body: Any
    delay_s: float = 0.0


@dataclass
class FakeGraphAPI:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    script: deque[Scripted] = field(default_factory=deque)
    templates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # None: the whole template list in one answer; else pages of this size, with cursors.
    template_page_size: int | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, status: int, code: int | None = None, *, times: int = 1,
                  message: str = "scripted failure", delay_s: float = 0.0) -> None:  # fmt: skip
        """Answer the next `times` requests with `status` and (when `code`) a Graph error body."""
        body: Any = (
            {
                "error": {
                    "message": message,
                    "type": "OAuthException",
                    "code": code,
                    "fbtrace_id": "FAKE",
                }
            }
            if code is not None
            else "upstream failure"
        )
        for _ in range(times):
            self.script.append(Scripted(status, body, delay_s))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Bodies of successful-or-not POSTs to /{version}/{phone_number_id}/messages, read
        statuses (`read_statuses`) left out: they share the endpoint but message nobody."""
        return [body for body in self._posted() if "status" not in body]

    @property
    def read_statuses(self) -> list[dict[str, Any]]:
        """Bodies of the read statuses (and typing indicators) POSTed to the same endpoint."""
        return [body for body in self._posted() if "status" in body]

    def _posted(self) -> list[dict[str, Any]]:
        return [
            r.json for r in self.requests if r.method == "POST" and r.path.endswith("/messages")
        ]

    async def _scripted(self) -> web.StreamResponse | None:
        """The next scripted answer, if any (shared by every route)."""
        if not self.script:
            return None
        scripted = self.script.popleft()
        if scripted.delay_s:
            await asyncio.sleep(scripted.delay_s)
        if isinstance(scripted.body, str):
            return web.Response(status=scripted.status, text=scripted.body)
        return web.json_response(scripted.body, status=scripted.status)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        scripted = await self._scripted()
        if scripted is not None:
            return scripted
        if request.headers.get("Authorization", "") in ("", "Bearer "):
            return web.json_response(
                {"error": {"message": "no token", "type": "OAuthException", "code": 190}},
                status=401,
            )
        if "status" in body:  # a read status (WHATSAPP.md 8.5)
            return web.json_response({"success": True})
        message_id = f"wamid.FAKE{next(self._ids):06d}"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                "messages": [{"id": message_id}],
            }
        )

    async def _templates(self, request: web.Request) -> web.StreamResponse:
        """Meta's template list, `template_page_size` per page with `paging` cursors."""
        query = dict(request.query)
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), query))
        scripted = await self._scripted()
        if scripted is not None:
            return scripted
        templates = self.templates.get(request.match_info["waba"], [])
        if self.template_page_size is None:
            return web.json_response({"data": templates})
        start = int(query.get("after", "0"))
        end = start + self.template_page_size
        page: dict[str, Any] = {"data": templates[start:end]}
        if end < len(templates):
            page["paging"] = {
                "cursors": {"before": str(start), "after": str(end)},
                "next": f"{self.url}{request.path}?after={end}",
            }
        return web.json_response(page)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{version}/{pnid}/messages", self._messages)
        app.router.add_get("/{version}/{waba}/message_templates", self._templates)
        return app
