"""Offsets that are safe to commit: up to the lowest record not yet finished, per stream."""

from __future__ import annotations

from collections import deque

from relay.bus.base import Stream


class Watermark:
    def __init__(self) -> None:
        self._pending: dict[Stream, deque[int]] = {}
        self._finished: dict[Stream, set[int]] = {}
        self._committable: dict[Stream, int] = {}
        self._dirty: set[Stream] = set()

    def track(self, stream: Stream, offset: int) -> None:
        """Records must be tracked in the order they were read."""
        self._pending.setdefault(stream, deque()).append(offset)

    def finish(self, stream: Stream, offset: int) -> None:
        pending = self._pending.get(stream)
        if not pending:
            return
        finished = self._finished.setdefault(stream, set())
        finished.add(offset)
        advanced = False
        while pending and pending[0] in finished:
            head = pending.popleft()
            finished.discard(head)
            self._committable[stream] = head + 1
            advanced = True
        if advanced:
            self._dirty.add(stream)

    def take_commits(self, everything: bool = False) -> dict[Stream, int]:
        """Next offsets to commit: for streams that advanced since the last call, or all."""
        streams = self._committable.keys() if everything else self._dirty
        commits = {stream: self._committable[stream] for stream in streams}
        self._dirty.clear()
        return commits

    def position(self, stream: Stream) -> int | None:
        """The next offset to commit for a stream, if any of it is finished."""
        return self._committable.get(stream)

    def pending(self, stream: Stream) -> int:
        """Records of a stream read and not finished yet."""
        pending = self._pending.get(stream)
        return len(pending) if pending else 0

    def forget(self, stream: Stream) -> None:
        """The stream was taken away (rebalance): its records will be read again elsewhere."""
        self._pending.pop(stream, None)
        self._finished.pop(stream, None)
        self._committable.pop(stream, None)
        self._dirty.discard(stream)

    @property
    def outstanding(self) -> int:
        return sum(len(pending) for pending in self._pending.values())
