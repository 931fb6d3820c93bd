"""The slow-header guard: a connection that has not started a request within the timeout
of connecting (or of finishing its previous one) is closed; one mid-request never is."""

from __future__ import annotations

from relay.ingress.guard import ConnectionGuard
from tests.factories import live_settings


class Connection:
    """Stands in for aiohttp's protocol object: the guard only calls ``force_close``."""

    def __init__(self) -> None:
        self.closed = False

    def force_close(self) -> None:
        self.closed = True


def test_a_silent_connection_is_closed_only_past_the_timeout() -> None:
    guard = ConnectionGuard(live_settings(header_timeout=5.0))
    silent = Connection()
    assert guard.sweep([silent], now=100.0) == 0  # first seen: its clock starts
    assert guard.sweep([silent], now=105.0) == 0 and not silent.closed  # exactly 5 s: not past
    assert guard.sweep([silent], now=105.5) == 1 and silent.closed


def test_a_connection_in_a_request_is_never_closed_and_its_clock_restarts_after() -> None:
    guard = ConnectionGuard(live_settings(header_timeout=5.0))
    busy = Connection()
    guard.sweep([busy], now=100.0)
    guard.started(busy)
    assert guard.sweep([busy], now=1000.0) == 0 and not busy.closed  # a slow body is no slow head
    guard.finished(busy)  # idle keep-alive from now on (monotonic time)
    assert not busy.closed


def test_pipelined_requests_keep_it_open_until_the_last_finishes() -> None:
    guard = ConnectionGuard(live_settings(header_timeout=0.0))
    conn = Connection()
    guard.started(conn)
    guard.started(conn)
    guard.finished(conn)
    assert guard.sweep([conn], now=10.0**9) == 0  # one request still in flight
    guard.finished(conn)
    assert guard.sweep([conn], now=10.0**9) == 1


def test_connections_gone_are_forgotten() -> None:
    guard = ConnectionGuard(live_settings(header_timeout=5.0))
    a, b = Connection(), Connection()
    guard.sweep([a, b], now=100.0)
    guard.sweep([b], now=101.0)
    assert a not in guard._since and b in guard._since
