"""POST one event to one subscriber: signed, rate limited, retried, behind a circuit breaker."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import msgspec
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from relay import __version__
from relay.config import Subscriber, per_second, seconds, webhook_secret
from relay.delivery import signing
from relay.delivery.breaker import CircuitBreaker
from relay.delivery.retry import AttemptFailed, Backoff, classify, parse_retry_after
from relay.ratelimit import RateLimiter

log = structlog.get_logger("relay.delivery")

USER_AGENT = f"relay/{__version__}"
_ERROR_BODY_BYTES = 512


class DeliveryResult(msgspec.Struct, frozen=True, kw_only=True):
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    reason: str | None = None
    """Why it was not delivered: ``rejected`` (a 4xx) or ``exhausted`` (retries ran out)."""
    seconds: float = 0.0


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, AttemptFailed) and exc.retryable


class Sender:
    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.keys = [webhook_secret(secret) for secret in subscriber.all_secrets]
        self.timeout = aiohttp.ClientTimeout(total=seconds(subscriber.timeout))
        retry = subscriber.retry
        self.backoff = Backoff(seconds(retry.initial), seconds(retry.max), retry.jitter)
        self.max_attempts = retry.max_attempts
        self.retry_4xx = subscriber.on_4xx == "retry"
        self.breaker = CircuitBreaker(
            subscriber.circuit_breaker.failures, seconds(subscriber.circuit_breaker.cooldown)
        )
        self.limiter = (
            RateLimiter(per_second(subscriber.rate_limit))
            if subscriber.rate_limit is not None
            else None
        )
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(subscriber.max_in_flight)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.subscriber.max_in_flight, keepalive_timeout=30, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT}, auto_decompress=False
        )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def deliver(
        self,
        event_id: str,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
    ) -> DeliveryResult:
        started = time.monotonic()
        try:
            # Most deliveries succeed at once: no retry machinery on that path.
            status = await self._attempt(event_id, body, content_type, extra)
        except AttemptFailed as failure:
            if not failure.retryable or self.max_attempts == 1:
                return self._failed(failure, attempts=1, started=started)
            return await self._retry(event_id, body, content_type, extra, failure, started)
        return DeliveryResult(
            delivered=True, attempts=1, status=status, seconds=time.monotonic() - started
        )

    async def _retry(
        self,
        event_id: str,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None,
        first: AttemptFailed,
        started: float,
    ) -> DeliveryResult:
        """Attempts 2..max_attempts, with tenacity: backoff, jitter, Retry-After."""
        await asyncio.sleep(self.backoff.delay(1, first.retry_after))
        attempts = 1
        status: int | None = None
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts - 1),
                wait=self.backoff.after(attempts_before=1),
                retry=retry_if_exception(_retryable),
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number + 1
                    status = await self._attempt(event_id, body, content_type, extra)
        except AttemptFailed as failure:
            return self._failed(failure, attempts=attempts, started=started)
        return DeliveryResult(
            delivered=True, attempts=attempts, status=status, seconds=time.monotonic() - started
        )

    @staticmethod
    def _failed(failure: AttemptFailed, *, attempts: int, started: float) -> DeliveryResult:
        return DeliveryResult(
            delivered=False,
            attempts=attempts,
            status=failure.status,
            error=failure.error,
            reason="exhausted" if failure.retryable else "rejected",
            seconds=time.monotonic() - started,
        )

    async def _attempt(
        self, event_id: str, body: bytes, content_type: str, extra: dict[str, str] | None
    ) -> int:
        async with self._slots:  # held for the attempt only, never during a backoff
            return await self._send(event_id, body, content_type, extra)

    async def _send(
        self, event_id: str, body: bytes, content_type: str, extra: dict[str, str] | None
    ) -> int:
        session = self._session
        if session is None:
            raise RuntimeError("sender is not started")
        await self.breaker.acquire()
        if self.limiter is not None:
            await self.limiter.acquire()
        headers = {
            **self.subscriber.headers,
            **(extra or {}),
            "Content-Type": content_type,
            **signing.headers(self.keys, event_id, int(time.time()), body),
        }
        try:
            async with session.post(
                self.subscriber.url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                excerpt = b"" if status < 300 else await response.content.read(_ERROR_BODY_BYTES)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.breaker.record_failure()
            raise AttemptFailed(
                status=None, error=_describe(exc), retry_after=None, retryable=True
            ) from exc
        except Exception as exc:  # e.g. a header aiohttp refuses: retrying cannot help
            raise AttemptFailed(
                status=None, error=_describe(exc), retry_after=None, retryable=False
            ) from exc
        verdict = classify(status, self.retry_4xx)
        if verdict == "delivered":
            self.breaker.record_success()
            return status
        server_trouble = status in (408, 429) or status >= 500
        if server_trouble:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()  # it answered: the endpoint is up
        detail = excerpt.decode("utf-8", "replace").strip()
        raise AttemptFailed(
            status=status,
            error=f"HTTP {status}" + (f": {detail}" if detail else ""),
            retry_after=retry_after,
            retryable=verdict == "retry",
        )
