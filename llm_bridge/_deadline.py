"""A deadline on one awaited step of an async call, that never swallows the caller's cancel.

`AsyncEngine` holds each request to its deadline with `within`, and the token share holds
each call to the share to `CALL_TIMEOUT` with it. Before Python 3.12 the obvious tool,
``asyncio.wait_for``, loses a cancellation of the calling task that arrives in the same
loop step as the awaited result (CPython gh-86296): it returns the result, and the caller
goes on as if never cancelled, so an ``asyncio.timeout``, a ``wait_for`` or a TaskGroup
around an llm-bridge call could not stop it. `within` never does:

- From Python 3.11 it is ``asyncio.timeout`` (what ``wait_for`` is built on from 3.12): the
  step runs in the caller's own task, and ``asyncio.timeout`` counts cancellations
  (``Task.cancelling``), so it turns only its own into `TimeoutError`. No task is made.
- On Python 3.10 a task's cancellations are not counted: two that arrive in one step merge
  into one, so a deadline that cancels the caller's task cannot tell whether someone else
  cancelled it too. The step runs in a task of its own, as ``wait_for``'s does, and the
  deadline only wakes the caller; every cancellation the caller receives is therefore
  someone else's. When the step's result came in the same loop step as that cancellation,
  the result is handed over and the task cancelled again, so the cancellation strikes at
  the caller's next ``await`` (where it would have struck had the result come a moment
  before it), and the caller's code, not this helper, closes what it got.

Either way: a deadline of ``seconds <= 0`` raises `TimeoutError` without starting the step
(as ``wait_for`` does), and the deadline is counted from the call, on the loop's clock.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Awaitable, TypeVar

__all__ = ["within"]

T = TypeVar("T")


def _expired(awaitable: Awaitable[Any]) -> TimeoutError:
    """The error for a deadline already passed, ``awaitable`` dropped unstarted (a
    coroutine closed, so it is never reported as never awaited)."""
    if asyncio.iscoroutine(awaitable):
        awaitable.close()
    elif asyncio.isfuture(awaitable):
        awaitable.cancel()
    return TimeoutError()


if sys.version_info >= (3, 11):

    async def within(awaitable: Awaitable[T], seconds: float) -> T:
        """``await awaitable``, or `TimeoutError` once ``seconds`` have passed (the step is
        cancelled); a cancellation of the calling task always propagates."""
        if seconds <= 0:
            raise _expired(awaitable)
        async with asyncio.timeout(seconds):
            return await awaitable

else:

    async def within(awaitable: Awaitable[T], seconds: float) -> T:
        """``await awaitable``, or `TimeoutError` once ``seconds`` have passed (the step is
        cancelled); a cancellation of the calling task always propagates."""
        if seconds <= 0:
            raise _expired(awaitable)
        loop = asyncio.get_running_loop()
        step = asyncio.ensure_future(awaitable)
        woken: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not woken.done():
                woken.set_result(None)

        timer = loop.call_later(seconds, wake)
        step.add_done_callback(wake)
        try:
            try:
                await woken  # only the step's end or the deadline complete it
            except asyncio.CancelledError as cancel:  # the caller's, never the deadline's
                if not step.done():
                    await _stop(step)
                if step.cancelled() or step.exception() is not None:
                    raise
                # The result came with the cancellation: handed over, the cancellation
                # renewed for the caller's next await.
                message = cancel.args[0] if cancel.args else None
                task = asyncio.current_task()
                if task is not None:
                    task.cancel(message)
                return step.result()
            if not step.done():  # the deadline
                await _stop(step)
                if step.cancelled():
                    raise TimeoutError() from None
            return step.result()
        finally:
            timer.cancel()
            step.remove_done_callback(wake)

    async def _stop(step: asyncio.Future[Any]) -> None:
        """Cancel ``step`` and wait until it has ended (a step still running after
        `within` returned would read on behind the caller's back); a second cancellation
        of the caller ends the wait, the step's own cancellation already requested."""
        step.cancel()
        await asyncio.wait((step,))
