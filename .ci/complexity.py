"""Fail when a function in shared/impex is longer than 60 lines or has cyclomatic complexity over 15.

Measured with radon: complexity is McCabe's (radon's cc_visit); length counts a function's lines
from its `def` to its last line, docstring and comments included. `make lint` runs this.
"""

from __future__ import annotations

import sys
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

MAX_LINES = 60
MAX_COMPLEXITY = 15
ROOT = Path(__file__).resolve().parent.parent / "shared" / "impex"


def functions(path: Path) -> list[Function]:
    """Every function and method in a module (nested ones included), once each."""
    found: dict[tuple[int, str], Function] = {}
    pending = list(cc_visit(path.read_text()))
    while pending:
        block = pending.pop()
        if isinstance(block, Function):
            found[(block.lineno, block.fullname)] = block
            pending.extend(block.closures)
        else:
            pending.extend(block.methods)
            pending.extend(getattr(block, "inner_classes", []))
    return list(found.values())


def main() -> int:
    problems = []
    longest, most_complex = 0, 0
    for path in sorted(ROOT.rglob("*.py")):
        for block in functions(path):
            lines = block.endline - block.lineno + 1
            longest, most_complex = max(longest, lines), max(most_complex, block.complexity)
            where = f"{path.relative_to(ROOT.parent)}:{block.lineno} {block.fullname}"
            if lines > MAX_LINES:
                problems.append(f"{where}: {lines} lines (at most {MAX_LINES})")
            if block.complexity > MAX_COMPLEXITY:
                problems.append(
                    f"{where}: cyclomatic complexity {block.complexity} (at most {MAX_COMPLEXITY})"
                )
    for problem in problems:
        print(problem)
    print(f"complexity: longest function {longest} lines, highest cyclomatic complexity {most_complex}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
