"""The HTML around every page the plugin serves: one stylesheet that follows Airflow's UI (its system font stack,
spacing and colours, light and dark with the browser's preference), so the pages read as part of Airflow."""

from __future__ import annotations

from html import escape

STYLE = """
:root { color-scheme: light dark; --fg: #1a202c; --muted: #4a5568; --bg: #ffffff; --panel: #f7fafc;
        --border: #e2e8f0; --link: #017cee; --code: #edf2f7; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e2e8f0; --muted: #a0aec0; --bg: #1a202c; --panel: #2d3748; --border: #4a5568;
          --link: #63b3ed; --code: #2d3748; }
}
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.5; font-size: 14px;
       font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 960px; padding: 16px 24px 48px; }
nav { font-size: 13px; color: var(--muted); margin-bottom: 8px; }
a { color: var(--link); text-decoration: none; } a:hover { text-decoration: underline; }
h1 { font-size: 22px; margin: 8px 0 16px; } h2 { font-size: 17px; margin: 24px 0 8px; }
h3 { font-size: 15px; }
code { background: var(--code); padding: 1px 4px; border-radius: 4px; font-size: 13px; }
pre { background: var(--code); padding: 12px; border-radius: 6px; overflow-x: auto; }
pre code { padding: 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid var(--border); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--panel); }
"""


def page(title: str, body: str, *, crumbs: tuple[tuple[str, str], ...] = ()) -> str:
    """A whole HTML document: `body` is trusted HTML (rendered by us); the title and crumb texts are escaped."""
    trail = " / ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for text, href in crumbs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{f'<nav>{trail}</nav>' if trail else ''}{body}</main></body></html>"
    )
