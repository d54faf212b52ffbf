"""What one operator process keeps between handler calls (Kopf's `memo.runtime`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from drishti_operator.kopf_setup import MemoryDiffBaseStorage
from drishti_operator.kube import Kube
from drishti_operator.render import DEFAULT_IMAGE
from drishti_operator.status import Failure

Key = tuple[str, str]  # (namespace, name) of a camera


@dataclass
class Applied:
    """What this operator process last applied for a camera: the yardstick for drift."""

    camera_uid: str
    generation: int  # the camera's generation these children were rendered from
    deployment_uid: str
    deployment_generation: int
    service_uid: str
    service_version: str


@dataclass
class Runtime:
    """Per-process state: the API client, what was applied and written, and the work in flight."""

    kube: Kube
    image: str = DEFAULT_IMAGE
    status_delay: float = 0.2
    applied: dict[Key, Applied] = field(default_factory=dict)
    written: dict[Key, dict[str, Any]] = field(default_factory=dict)
    failures: dict[Key, tuple[int, Failure]] = field(default_factory=dict)
    locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    pending: set[Key] = field(default_factory=set)
    diffbase: MemoryDiffBaseStorage | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _reconciling: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def lock(self, key: Key) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def forget(self, key: Key) -> None:
        self.applied.pop(key, None)
        self.written.pop(key, None)
        self.failures.pop(key, None)
        self.locks.pop(key, None)

    @contextmanager
    def reconciling(self) -> Iterator[None]:
        """Marks a reconcile in flight: status writes wait for the reconciles (see `no_reconcile_within`)."""
        self._reconciling += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._reconciling -= 1
            if not self._reconciling:
                self._idle.set()

    async def no_reconcile_within(self, seconds: float) -> None:
        """Returns once no reconcile is in flight, or after `seconds` (a long burst still shows progress)."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            pass
