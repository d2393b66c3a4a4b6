"""One thread for every store call, so that a commit that waits for the disk
(synchronous=FULL) never holds up the event loop, which serves the API and runs the escalation
ticker and the dispatcher.

A single worker also means the calls never overlap: a transaction opened by one job is
committed (or rolled back) before the next job runs, so whatever reads the outbox sees only
committed intents. The event loop awaits `run(...)`; other code (tests, a script) may block on
`call(...)`, which runs in place when it is already on the store thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
THREAD_NAME = "alerting-store"


class StoreThread:
    """A single dedicated worker thread that runs store work in order, one job at a time."""

    def __init__(self, name: str = THREAD_NAME) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.ident = self._executor.submit(threading.get_ident).result()

    def on_it(self) -> bool:
        """Whether the caller is the store thread itself."""
        return threading.get_ident() == self.ident

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the store thread; blocks the caller until it is done."""
        if self.on_it():
            return function(*args)
        return self._executor.submit(function, *args).result()

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """`function(*args)` on the store thread, after the jobs already given; not awaited."""
        self._executor.submit(function, *args)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the store thread, awaited: the event loop goes on meanwhile."""
        if self.on_it():
            return function(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    def close(self) -> None:
        """Let the jobs already given finish, then end the thread."""
        self._executor.shutdown(wait=not self.on_it())
