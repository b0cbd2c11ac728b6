"""Item bodies in the format a request asks for (ItemShape/BodyType) and as TextBody.

`Best` (the default) returns the body as stored, `Text` as plain text, `HTML` as HTML; the
answer's `Body/@BodyType` names what it is. `TextBody` is always the plain text
(ews_client/PROTOCOL_NOTES.md, "Simulator conformance (exchangelib)"). The conversions are the
simulator's own: tags dropped, block elements and line breaks become new lines, entities
decoded; plain text is escaped into a minimal HTML document.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from lxml import etree

from .xmlutil import t

# Elements that start a new line in a text rendering, and those whose content is not text.
_BLOCKS = frozenset(("address", "blockquote", "div", "dl", "dt", "dd", "h1", "h2", "h3", "h4",
                     "h5", "h6", "hr", "li", "ol", "p", "pre", "table", "tr", "ul"))  # fmt: skip
_HIDDEN = frozenset(("head", "script", "style", "title"))
_SPACES = re.compile(r"[ \t\r\n\f]+")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(_SPACES.sub(" ", data))

    def _break(self) -> None:
        if self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")

    def text(self) -> str:
        lines = "".join(self.parts).split("\n")
        return "\n".join(line.strip() for line in lines).strip("\n")


def html_to_text(markup: str) -> str:
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return collector.text()


def text_to_html(text: str) -> str:
    lines = html.escape(text).split("\n")
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        f"</head><body>{'<br>'.join(lines)}</body></html>"
    )


def _stored(body: etree._Element) -> tuple[str, str]:
    # A body without BodyType (written through the admin API) is plain text.
    kind = "HTML" if body.get("BodyType") == "HTML" else "Text"
    return kind, body.text or ""


def body_as(body: etree._Element, wanted: str, tag: str | None = None) -> etree._Element:
    """`body` (a stored t:Body) in the `wanted` format: Best, HTML or Text."""
    kind, value = _stored(body)
    if wanted == "Text" and kind == "HTML":
        kind, value = "Text", html_to_text(value)
    elif wanted == "HTML" and kind == "Text":
        kind, value = "HTML", text_to_html(value)
    out = etree.Element(tag or t("Body"), {"BodyType": kind})
    out.text = value
    return out


def text_body(body: etree._Element | None) -> etree._Element:
    """The computed t:TextBody of an item with `body` (empty when it has none)."""
    if body is None:
        out = etree.Element(t("TextBody"), {"BodyType": "Text"})
        out.text = ""
        return out
    return body_as(body, "Text", t("TextBody"))
