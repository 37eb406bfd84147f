"""The agent's retry policy, one shape for every connection it retries itself.

Exponential backoff, each failure logged with the wait before the next try, and a stop
event that ends the retrying and cuts a wait short (so shutdown is never held up by a
backoff). ``Retrying(...)(fn)`` returns None once stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential


def backoff(
    stop: threading.Event,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    *,
    first_s: float,
    max_s: float,
    describe: Callable[[BaseException | None, float], str],
    log: logging.Logger,
) -> Retrying:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s", describe(exc, wait))

    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return Retrying(
        retry=retry_if_exception_type(retry_on),
        wait=wait_exponential(multiplier=first_s, min=first_s, max=max_s),
        stop=lambda _state: stop.is_set(),
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=lambda _state: None,
    )
