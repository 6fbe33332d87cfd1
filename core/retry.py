"""The one retry policy: transient failures back off exponentially, with jitter, a few times.

Why one: a blip on the network looks the same to every call that crosses it (describing a
collection at preflight, opening a read stream, writing or syncing a batch), so they all
retry the same errors (`TransientError`: timeouts, resets, 429, 5xx) on the same schedule.
Jitter matters when several writers fail together: without it they retry in lockstep and
hit a recovering server at the same instant. Permanent errors are never retried.

Each `call` is its own series of attempts, so a long read retries each batch afresh: a
stream that blips once an hour never runs out of attempts, one that is down does.

A throttling server (429, 503: `TransientError.throttled`) is not failing, it is asking us
to wait: its `Retry-After` (seconds or an HTTP date) replaces the backoff, and throttled
answers do not use up the attempts; only the give-up time bounds them, and a wait that
would end beyond it is not started (the error says so at once instead of after it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_any,
    stop_before_delay,
    wait_exponential_jitter,
)

from ferry.core.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryNotice:
    """What a retry callback learns: which attempt failed, why, and the wait before the next."""

    attempt: int
    error: BaseException | None
    delay: float


OnRetry = Callable[[RetryNotice], None]


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` tries and no new try after `give_up_after` seconds; waits grow
    from `initial` seconds to `maximum`, jittered. With every request under a timeout (see
    the connectors), one call gives up within `give_up_after` + one request's timeout."""

    max_attempts: int = 6
    initial: float = 0.2
    maximum: float = 10.0
    give_up_after: float = 120.0

    def describe(self, error: BaseException | None = None) -> str:
        """How long this policy tries, in words for a give-up message (a throttled call is
        bounded by time alone)."""
        if getattr(error, "throttled", False):
            return f"{self.give_up_after:g}s of being throttled"
        return f"{self.max_attempts} attempts within {self.give_up_after:.0f}s"

    def retrying(self, on_retry: OnRetry | None = None) -> AsyncRetrying:
        """A fresh tenacity series; the last error is re-raised as itself when attempts run out."""

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is None:
                return
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            on_retry(RetryNotice(state.attempt_number, error, float(delay)))

        backoff = wait_exponential_jitter(initial=self.initial, max=self.maximum)

        def wait(state: RetryCallState) -> float:
            asked = getattr(_last_error(state), "retry_after", None)
            return float(asked) if asked is not None else float(backoff(state))

        def out_of_attempts(state: RetryCallState) -> bool:
            if getattr(_last_error(state), "throttled", False):
                return False  # "not now" is not a failure: the give-up time bounds it
            return state.attempt_number >= self.max_attempts

        return AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait,
            stop=stop_any(out_of_attempts, stop_before_delay(self.give_up_after)),
            before_sleep=before_sleep,
            reraise=True,
        )

    async def call(self, fn: Callable[[], Awaitable[T]], on_retry: OnRetry | None = None) -> T:
        """`await fn()`, retried on `TransientError` under this policy."""
        async for attempt in self.retrying(on_retry):
            with attempt:
                return await fn()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


def _last_error(state: RetryCallState) -> BaseException | None:
    outcome = getattr(state, "outcome", None)  # None before the first attempt ends
    return outcome.exception() if outcome is not None and outcome.failed else None
