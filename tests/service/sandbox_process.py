"""A Devino sandbox in a process of its own, for the tests that kill ``serve``:
``python -m tests.service.sandbox_process CONFIG.yaml``. Prints its base URL on the first line,
then serves until its standard input closes."""

from __future__ import annotations

import asyncio
import sys

from notify_devino.logconfig import configure_logging
from notify_devino_soap.emulator import Sandbox
from notify_devino_soap.emulator.config import load_sandbox_config


async def serve(path: str) -> None:
    async with Sandbox(load_sandbox_config(path)) as sandbox:
        print(sandbox.base_url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    configure_logging("json", "error")
    asyncio.run(serve(sys.argv[1]))
