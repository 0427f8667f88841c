"""Rate limits for public posts per client, in memory (an anonymous survey, the request form): one process's count."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimit:
    """At most `limit` events per client in `window` seconds (per process; a restart forgets)."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, *, now: float | None = None) -> bool:
        """Count one event for `client`; False (not counted) when it is over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) > 10_000:  # forget quiet clients rather than grow without bound
                self._seen = {c: d for c, d in self._seen.items() if d and d[-1] > now - self.window}
            recent = self._seen.setdefault(client, deque())
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            if len(recent) >= self.limit:
                return False
            recent.append(now)
            return True
