"""Building HTML where escaping is the default: any plain string is text, never markup.

Agents write whatever they like (`<script>` included), so pages are built from `el()` calls
rather than string templates: a child or attribute that is not already `Markup` is escaped.
`Markup` is made here and in two trusted places only: the page style (a constant) and the
self-play chart of `haggler.evals.plot.rounds_svg`, whose every text is XML-escaped there.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import TypeAlias
from urllib.parse import urlencode

__all__ = ["Markup", "Node", "el", "join", "link", "text", "url"]


class Markup(str):
    """A string that is already HTML and must not be escaped again."""

    __slots__ = ()


Node: TypeAlias = "Markup | str | int | float | None | Iterable[Node]"

# Elements with no content and no closing tag.
_VOID = frozenset({"br", "hr", "img", "input", "link", "meta", "rect", "line", "circle", "path"})
_SVG_SELF_CLOSING = frozenset({"rect", "line", "circle", "path"})


def text(value: Node) -> Markup:
    """`value` as HTML: markup kept, anything else escaped (lists flattened, None dropped)."""
    if value is None:
        return Markup("")
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return Markup(escape(value, quote=False))
    if isinstance(value, bool):
        return Markup(escape(str(value)))
    if isinstance(value, (int, float)):
        return Markup(str(value))
    return Markup("".join(text(item) for item in value))


def _attribute(name: str, value: object) -> str:
    # Python names cannot carry a dash or be a keyword: data_id= -> data-id, class_= -> class.
    name = name.rstrip("_").replace("_", "-")
    if value is True:
        return f" {name}"
    return f' {name}="{escape(str(value), quote=True)}"'


def el(tag: str, *children: Node, **attributes: object) -> Markup:
    """`<tag attributes>children</tag>`; attributes that are None or False are left out."""
    attrs = "".join(
        _attribute(name, value)
        for name, value in attributes.items()
        if value is not None and value is not False
    )
    if tag in _VOID and not children:
        closing = "/" if tag in _SVG_SELF_CLOSING else ""
        return Markup(f"<{tag}{attrs}{closing}>")
    return Markup(f"<{tag}{attrs}>{text(children)}</{tag}>")


def join(parts: Iterable[Node], separator: Node = "") -> Markup:
    sep = text(separator)
    return Markup(sep.join(text(part) for part in parts))


def url(path: str, **params: object) -> str:
    """A path with its query string; parameters that are None or blank are left out."""
    kept = {k: str(v) for k, v in params.items() if v is not None and str(v) != ""}
    return f"{path}?{urlencode(kept)}" if kept else path


def link(href: str, *children: Node, **attributes: object) -> Markup:
    return el("a", *children, href=href, **attributes)
