"""`python -m bench.worker --poll-delay S`: deskline's worker with arq's poll delay overridden.

`python -m bot worker` keeps arq's default `poll_delay` of 0.5 s: an idle worker looks at the
queue twice a second, so a message waits 250 ms on average before its first job starts, and a
busy one takes at most `queue_read_limit` jobs (250) per poll, i.e. at most 500 jobs/s. The
bench runs this variant beside the stock worker to measure what a shorter delay would change;
it is the same `worker_settings` and the same jobs, only that one argument differs.
"""

from __future__ import annotations

import argparse
import asyncio

from arq.worker import create_worker

from bot.logs import configure_logging
from bot.settings import Settings
from bot.worker import worker_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("--poll-delay", type=float, required=True, help="seconds")
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)

    async def run() -> None:
        options = {**worker_settings(settings), "poll_delay": args.poll_delay}
        worker = create_worker(options)
        try:
            await worker.async_run()
        finally:
            await worker.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
