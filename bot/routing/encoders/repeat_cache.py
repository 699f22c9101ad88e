"""Recent texts' vectors in memory, keyed by token ids, shared by the routing threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np


class RepeatCache:
    """A bounded least-recently-used map of token ids -> vector, shared by the routing threads.

    Real traffic repeats ("hi", "thanks", "talk to a human", the top questions); a repeat then costs a
    dictionary lookup instead of an encoder run. A hit equals what the model computes for the text alone
    up to float rounding, whatever group it was computed in (both ONNX backends' vectors are independent
    of their batch). `size` 0 turns it off.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, keys: Sequence[bytes]) -> dict[int, np.ndarray]:
        """Cached vectors by position in `keys`; each hit becomes the most recently used."""
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for position, key in enumerate(keys):
                vector = self._entries.get(key)
                if vector is not None:
                    self._entries.move_to_end(key)
                    found[position] = vector
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Remember vectors (read-only copies), dropping the least recently used beyond `size`."""
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                stored = vector.copy()
                stored.flags.writeable = False  # callers share it: nobody may change a cached vector
                self._entries[key] = stored
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
