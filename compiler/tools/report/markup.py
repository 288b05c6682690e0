"""Escaping for the report page: `_e` HTML-escapes any value, `_Raw` marks text that is already HTML.

Kept apart from html.py so that data.py (whose precision column is pre-rendered markup) need not import it.
"""

from __future__ import annotations

import html


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _e(value) -> str:
    return html.escape(str(value), quote=True)
