"""Reading a network's depth back from its state-dict keys (shared by the networks' ``infer_config``)."""
from __future__ import annotations

import re
from collections.abc import Iterable


def count_indices(keys: Iterable[str], pattern: str) -> int:
    """How many distinct values the first group of ``pattern`` takes over ``keys`` (e.g. block numbers)."""
    regex = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := regex.match(k))})
