"""Runbooks rendered for their pages: Markdown to HTML, raw HTML kept as text, and only names of files in the folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_obs.observability.console.runbooks import RunbookNotFound, render_markdown

from tests.conftest import REPO_ROOT


def write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.md").write_text(text, encoding="utf-8")


def test_a_runbook_renders_headings_lists_code_tables_and_relative_links(tmp_path) -> None:
    write(
        tmp_path,
        "AirflowX",
        "# AirflowX\n## Diagnosis\n1. run `airflow dags list`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "See [AirflowY](AirflowY.md).\n",
    )

    html = render_markdown(tmp_path, "AirflowX")

    assert "<h1>AirflowX</h1>" in html and "<h2>Diagnosis</h2>" in html
    assert "<code>airflow dags list</code>" in html and "<td>2</td>" in html
    assert '<a href="AirflowY.md">AirflowY</a>' in html


def test_html_inside_a_runbook_is_shown_as_text_not_run(tmp_path) -> None:
    write(tmp_path, "AirflowX", "# X\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n")

    html = render_markdown(tmp_path, "AirflowX")

    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html


@pytest.mark.parametrize("name", ["Missing", "../AirflowX", "AirflowX.md", "", "a/b", "x" * 200])
def test_a_name_that_is_not_a_runbook_file_in_the_folder_is_refused_with_the_name(tmp_path, name) -> None:
    write(tmp_path, "AirflowX", "# X\n")
    (tmp_path.parent / "AirflowX.md").write_text("# outside\n")

    with pytest.raises(RunbookNotFound) as refused:
        render_markdown(tmp_path, name)
    assert repr(name) in str(refused.value) and "runbooks/<AlertName>.md" in str(refused.value)


def test_every_committed_runbook_renders_with_its_four_headings() -> None:
    for path in sorted((REPO_ROOT / "runbooks").glob("Airflow*.md")):
        html = render_markdown(path.parent, path.stem)
        for heading in ("Meaning", "Impact", "Diagnosis", "Mitigation"):
            assert f"<h2>{heading}</h2>" in html, (path.name, heading)
