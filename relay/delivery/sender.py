"""POST one event to one subscriber: signed, rate limited, retried, behind a circuit breaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from relay import __version__
from relay.config import Subscriber, webhook_secret
from relay.deadletters import DeliveryFailure
from relay.delivery import signing
from relay.delivery.breaker import CircuitBreaker, Rule
from relay.delivery.client import Client, HttpError
from relay.delivery.retry import AttemptFailed, Backoff, classify, parse_retry_after
from relay.ratelimit import RateLimiter

if TYPE_CHECKING:
    from relay.telemetry.otel import AttemptTrace, Tracing

log = structlog.get_logger("relay.delivery")

USER_AGENT = f"relay/{__version__}"
_ERROR_BODY_BYTES = 512
"""Bytes of a failed answer kept for its error (and the attempt log's excerpt)."""


class DeliveryResult(msgspec.Struct, frozen=True, kw_only=True):
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    reason: DeliveryFailure | None = None
    """Why it was not delivered (relay.deadletters.DeliveryFailure says each)."""
    seconds: float = 0.0


OnFailure = Callable[[str, int, "AttemptFailed", float | None], Awaitable[None]]
"""Told of each failed attempt: the event id, the attempt's number, why, and the wait before
the next (None: it was the last)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, AttemptFailed) and exc.retryable


async def _ignore(
    event_id: str, attempt: int, failure: AttemptFailed, retry_in: float | None
) -> None:
    return None


class Sender:
    def __init__(self, subscriber: Subscriber, *, tracing: Tracing | None = None) -> None:
        self.subscriber = subscriber
        self.tracing = tracing
        """None: attempts go out untraced, with no tracing work (relay.telemetry)."""
        self._host = urlsplit(subscriber.url).hostname
        self.keys = [webhook_secret(secret) for secret in subscriber.all_secrets]
        self._signer = signing.Signer(self.keys)
        self.timeout = subscriber.timeout
        retry = subscriber.retry
        self.backoff = Backoff(retry.initial, retry.max, retry.jitter)
        self.max_attempts = retry.max_attempts
        self.retry_4xx = subscriber.on_4xx == "retry"
        self.breaker = CircuitBreaker(breaker_rule(subscriber), name=subscriber.name)
        self.limiter = (
            RateLimiter(subscriber.rate_limit) if subscriber.rate_limit is not None else None
        )
        self._client: Client | None = None
        self._slots = asyncio.Semaphore(subscriber.max_in_flight)

    async def start(self) -> None:
        # relay.delivery.client: no cookie jar (a subscriber's Set-Cookie never rides along
        # on later deliveries), no redirects followed, pooled keep-alive connections
        self._client = Client(
            self.subscriber.url,
            headers=fixed_headers(self.subscriber),
            timeout=self.timeout,
            max_idle=self.subscriber.max_in_flight,
            keep_body=_ERROR_BODY_BYTES,
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def deliver(
        self,
        event_id: str,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
        *,
        prior_attempts: int = 0,
        on_failure: OnFailure = _ignore,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> DeliveryResult:
        """Attempt ``prior_attempts + 1`` up to ``retry.max_attempts``, counting earlier runs.

        ``traceparent``/``tracestate``: the event's trace context, continued by the attempts'
        spans when this sender traces."""
        started = time.monotonic()
        attempt = prior_attempts + 1
        if attempt > self.max_attempts:  # its budget was spent before a restart
            return DeliveryResult(
                delivered=False,
                attempts=prior_attempts,
                error="retry budget used up before a restart",
                reason="exhausted",
            )
        trace: AttemptTrace | None = None
        if self.tracing is not None:
            trace = self.tracing.attempts(
                self.subscriber.name,
                event_id,
                traceparent,
                tracestate,
                prior_attempts=prior_attempts,
                server=self._host,
            )
            on_failure = trace.watch(on_failure)
        try:
            # Most deliveries succeed at once: no retry machinery on that path.
            if trace is None:
                status = await self._attempt(event_id, body, content_type, extra)
            else:
                status = await trace.run(self._attempt, event_id, body, content_type, extra)
        except AttemptFailed as failure:
            if not failure.retryable or attempt >= self.max_attempts:
                await on_failure(event_id, attempt, failure, None)
                return self._failed(failure, attempts=attempt, started=started)
            return await self._retry(
                event_id, body, content_type, extra, failure, attempt, started, on_failure, trace
            )
        return DeliveryResult(
            delivered=True, attempts=attempt, status=status, seconds=time.monotonic() - started
        )

    async def _retry(
        self,
        event_id: str,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None,
        first: AttemptFailed,
        done: int,
        started: float,
        on_failure: OnFailure,
        trace: AttemptTrace | None = None,
    ) -> DeliveryResult:
        """Attempts ``done + 1``..max_attempts, with tenacity: backoff, jitter, Retry-After."""
        delay = self.backoff.delay(done, first.retry_after)
        await on_failure(event_id, done, first, delay)
        await asyncio.sleep(delay)
        attempts = done
        status: int | None = None

        async def before_sleep(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            if isinstance(failure, AttemptFailed):
                wait = state.next_action.sleep if state.next_action is not None else None
                await on_failure(event_id, done + state.attempt_number, failure, wait)

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts - done),
                wait=self.backoff.after(attempts_before=done),
                retry=retry_if_exception(_retryable),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    attempts = done + attempt.retry_state.attempt_number
                    if trace is None:
                        status = await self._attempt(event_id, body, content_type, extra)
                    else:
                        status = await trace.run(self._attempt, event_id, body, content_type, extra)
        except AttemptFailed as failure:
            await on_failure(event_id, attempts, failure, None)
            return self._failed(failure, attempts=attempts, started=started)
        return DeliveryResult(
            delivered=True, attempts=attempts, status=status, seconds=time.monotonic() - started
        )

    @staticmethod
    def _failed(failure: AttemptFailed, *, attempts: int, started: float) -> DeliveryResult:
        reason: DeliveryFailure
        if failure.status == 410:
            reason = "gone"
        else:
            reason = "exhausted" if failure.retryable else "rejected"
        return DeliveryResult(
            delivered=False,
            attempts=attempts,
            status=failure.status,
            error=failure.error,
            reason=reason,
            seconds=time.monotonic() - started,
        )

    async def _attempt(
        self, event_id: str, body: bytes, content_type: str, extra: dict[str, str] | None
    ) -> int:
        """One POST. One coroutine on the hot path: slot, breaker, limiter, sign, send."""
        client = self._client
        if client is None:
            raise RuntimeError("sender is not started")
        async with self._slots:  # held for the attempt only, never during a backoff
            breaker = self.breaker
            ticket = await breaker.acquire() if breaker.state != "closed" else None
            try:
                if self.limiter is not None:
                    await self.limiter.acquire()
                headers = {"Content-Type": content_type}
                if extra:
                    headers.update(extra)
                self._signer.add_headers(headers, event_id, int(time.time()), body)
                try:
                    response = await client.post(body, headers)
                except (HttpError, TimeoutError, OSError) as exc:
                    breaker.record_failure(ticket)
                    raise AttemptFailed(
                        status=None, error=_describe(exc), retry_after=None, retryable=True
                    ) from exc
                except Exception as exc:  # e.g. a header that cannot be sent: retrying cannot help
                    raise AttemptFailed(
                        status=None, error=_describe(exc), retry_after=None, retryable=False
                    ) from exc
                status = response.status
                if status < 300:
                    breaker.record_success(ticket)
                    return status
            finally:
                if ticket is not None:
                    breaker.release(ticket)
        # Standard Webhooks: Retry-After is what a 429 or 503 asks for
        retry_after = (
            parse_retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
        )
        excerpt = response.body
        verdict = classify(status, self.retry_4xx)
        if status in (408, 429) or status >= 500:
            breaker.record_failure(ticket)
        else:
            breaker.record_success(ticket)  # it answered: the endpoint is up
        detail = excerpt.decode("utf-8", "replace").strip()
        raise AttemptFailed(
            status=status,
            error=f"HTTP {status}" + (f": {detail}" if detail else ""),
            retry_after=retry_after,
            retryable=verdict == "retry" and status != 410,
        )


_PER_REQUEST = frozenset(
    {"content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "traceparent"}
    | {"tracestate"}
)


def fixed_headers(subscriber: Subscriber) -> dict[str, str]:
    """``User-Agent`` and the subscriber's ``headers``, less those each request sets."""
    fixed = {"User-Agent": USER_AGENT}
    for name, value in subscriber.headers.items():
        lower = name.lower()
        if lower in _PER_REQUEST or lower.startswith("ce-"):
            continue
        if lower == "user-agent":
            fixed.pop("User-Agent", None)
        fixed[name] = value
    return fixed


def breaker_rule(subscriber: Subscriber) -> Rule:
    # the configuration's section and the pure rule have the same fields by design
    return Rule(**msgspec.structs.asdict(subscriber.circuit_breaker))
