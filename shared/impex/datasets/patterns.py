"""Dataset `pattern` constraints, run by RE2: matching takes linear time, whatever the pattern and
the cell, so a pathological pattern such as `(a+)+$` costs microseconds a cell and never holds up
a worker or another request.

RE2 supports the usual syntax — character classes, anchors, alternation, repetition (`* + ? {m,n}`,
lazy forms too), groups (including named `(?P<name>…)` and non-capturing `(?:…)`), flags such as
`(?i)`, `\\d \\w \\s \\b` and Unicode classes `\\pL` — but not backreferences (`\\1`) or lookaround
(`(?=…)`, `(?!…)`, `(?<=…)`, `(?<!…)`), which cannot be run in linear time: a dataset using them is
refused when it is created.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The pattern compiled by RE2; ValueError, saying why, when RE2 cannot run it."""
    # Loaded here, not at import: RE2's extension (with abseil) took ~7 ms of every api cold start,
    # and only a dataset with a pattern constraint needs it.
    import re2

    options = re2.Options()
    options.log_errors = False  # a refused pattern is reported to the caller, not logged by RE2
    try:
        return re2.compile(pattern, options=options)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        try:
            re.compile(pattern)
        except re.error as invalid:
            raise ValueError(f"pattern is not a valid regular expression: {invalid}") from None
        raise ValueError(
            f"pattern cannot be run in linear time ({reason}); patterns use RE2 syntax, without "
            "backreferences or lookaround"
        ) from None
