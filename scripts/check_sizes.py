"""Size limits of the package (docs/architecture.md, "Size limits"): a module of at most 400 lines, a
function of at most 60, unless its docstring has a line starting with "Long because" that says why.

    python scripts/check_sizes.py [PATH ...]     (default: bot; bot/store/migrations/ is generated)

Prints one line per breach, `path:line: ...`, and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MODULE_LIMIT = 400
FUNCTION_LIMIT = 60
MARKER = "Long because"
EXCLUDED = ("bot/store/migrations/",)


def explains_length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the function's docstring has a line starting with the marker."""
    docstring = ast.get_docstring(node) or ""
    return any(line.strip().startswith(MARKER) for line in docstring.splitlines())


def breaches(path: Path) -> Iterator[str]:
    """The size limits `path` goes over, one message each."""
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    if lines > MODULE_LIMIT:
        yield f"{path}: {lines} lines (limit {MODULE_LIMIT})"
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > FUNCTION_LIMIT and not explains_length(node):
                yield (
                    f"{path}:{node.lineno}: function {node.name} is {length} lines (limit {FUNCTION_LIMIT}); "
                    "say why in its docstring or split it"
                )


def python_files(roots: list[str]) -> Iterator[Path]:
    """The .py files under `roots`, sorted, without the excluded folders."""
    for root in roots:
        base = Path(root)
        for path in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            if not any(path.as_posix().startswith(prefix) for prefix in EXCLUDED):
                yield path


def main(argv: list[str]) -> int:
    """Report every breach under the given paths (default: bot); 1 if there was any."""
    found = [message for path in python_files(argv or ["bot"]) for message in breaches(path)]
    for message in found:
        print(message)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
