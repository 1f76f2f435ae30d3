"""Each benchmark owns a marked section of docs/benchmarks.md and rewrites only that."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(name: str, section: str, path: Path = DOCS) -> None:
    """Replace what lies between the `name` markers in `path`; everything else is kept."""
    start_marker, end_marker = markers(name)
    document = path.read_text()
    start, end = document.find(start_marker), document.find(end_marker)
    if start < 0 or end < start:
        raise RuntimeError(f"{path} lacks the {start_marker} ... {end_marker} markers")
    path.write_text(document[: start + len(start_marker)] + "\n" + section + "\n" + document[end:])
