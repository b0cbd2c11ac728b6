"""Running a mailbox's requests side by side: each in its own task of one TaskGroup, so that the
throttle (not the order of the code) decides how many are in flight, and nothing outlives the
call that started them.

A TaskGroup reports failures as an ExceptionGroup; callers tell Exchange errors apart by type
(a throttled answer, an expired sync state, a missing item), so the first failure is raised as
itself. The others went with the tasks the group cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception in `group`, out of any nesting."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found


async def gather_ordered(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run `coros` concurrently; their results in the order given. The first failure cancels
    the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(c) for c in coros]
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return [t.result() for t in tasks]
