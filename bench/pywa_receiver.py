"""A reference point: pywa's async receiver on FastAPI/uvicorn, with no Redis at all.

`python -m bench.pywa_receiver --port P --secret S` serves `POST /webhook` the way a pywa bot
does: signature check, update parsing and dispatch to an async `on_message` handler that does
nothing. It stores nothing, so it is not a ceiling; the issue asks deskline to beat it anyway.
Only run when the `bench` extra installed pywa (the runner skips it otherwise).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import uvicorn
from fastapi import FastAPI


def make_app(secret: str) -> FastAPI:
    from pywa_async import WhatsApp  # type: ignore[attr-defined]

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    wa = WhatsApp(
        phone_id="100000000000001",
        token="bench-token",  # noqa: S106 -- never used: nothing is sent
        server=app,
        webhook_endpoint="/webhook",
        verify_token="bench-verify-token",  # noqa: S106 -- a benchmark's fixed value
        app_secret=secret,
        validate_updates=True,
        webhook_challenge_delay=0,
    )

    @wa.on_message()  # type: ignore[misc]
    async def handle(_: Any, message: Any) -> None:
        return None

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pywa_receiver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    logging.getLogger("pywa").setLevel(logging.WARNING)
    uvicorn.run(
        make_app(args.secret),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="asyncio",
    )


if __name__ == "__main__":
    main()
