"""Runbooks served by the api-server as readable pages: where every alert's runbook link points by default, so it
opens on any deployment that runs Airflow ([observability] runbook_base_url points the links at a team's wiki instead).

The Markdown of runbooks/<Alert>.md is rendered with markdown-it-py (CommonMark plus tables). Raw HTML in a runbook
is shown as text, not passed through: the pages are same-origin with the Airflow UI and its session cookie. Links
between runbooks (`[X](X.md)`) are relative, so they work here as they do on a code host.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from markdown_it import MarkdownIt

# An alert name as Prometheus allows it, or the index's README: nothing that could walk out of the folder.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
INDEX = "README"


class RunbookNotFound(LookupError):
    """No runbook of that name in the runbooks folder."""


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def runbook_path(folder: Path, name: str) -> Path:
    """The runbook's file, or RunbookNotFound naming what was asked for and where it was looked for."""
    path = folder / f"{name}.md"
    if not _NAME.match(name) or not path.is_file():
        raise RunbookNotFound(f"no runbook {name!r} in {folder}: expected runbooks/<AlertName>.md")
    return path


def render_markdown(folder: Path, name: str) -> str:
    """The runbook's body as HTML (the console's page template goes around it)."""
    return _markdown().render(runbook_path(folder, name).read_text(encoding="utf-8"))
