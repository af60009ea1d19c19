"""Parse stage, HTML bodies: readable text from HTML. The inscriptis and lxml adapter.

Inscriptis keeps the layout (tables and lists keep their shape), but it reads the tree lxml
builds, and libxml2 stops building at 256 nested elements: a long reply chain of nested
blockquotes came out as the text above the nesting alone, everything after it lost. Whenever
the tree is cut short, or the layout pass fails, every text node is read flat instead by the
stdlib's tokenizer (it keeps no tree, so no depth can stop it), and the caller records the
``html_flattened`` defect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser as FlatParser

from inscriptis import Inscriptis
from lxml.etree import LxmlError, ParserError
from lxml.html import HTMLParser, document_fromstring

_XML_DECLARATION = re.compile(r"^<\?xml [^>]+?\?>")
_BLANK_LINES = re.compile(r"\n{3,}")
# Elements whose text is never shown to a reader.
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Elements that end a line when read flat (the rest run on with a space).
_BREAKS = frozenset({"p", "div", "br", "li", "tr", "blockquote", "h1", "h2", "h3", "h4", "h5",
                     "h6", "pre", "table", "ul", "ol", "hr", "section", "article"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class HtmlText:
    """The text of an HTML body; ``flattened`` when the layout pass could not read it whole."""

    text: str
    flattened: bool


def html_text(html: str) -> HtmlText:
    """Readable text from an HTML body: layout-aware, or flat when the tree would lose text."""
    content = _XML_DECLARATION.sub("", html.strip(), count=1)
    if not content:
        return HtmlText("", False)
    parser = HTMLParser()  # one per call: its error log says whether this document was cut
    try:
        tree = document_fromstring(content, parser=parser)
        cut = any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log)
        text = "" if cut else str(Inscriptis(tree).get_text())
    except (LxmlError, ParserError, ValueError, RecursionError):
        cut, text = True, ""
    if cut or (not text.strip() and _has_words(content)):
        return HtmlText(flat_text(content), True)
    return HtmlText(text, False)


def flat_text(html: str) -> str:
    """Every visible text node of ``html`` in document order, whatever the nesting depth."""
    reader = _TextNodes()
    reader.feed(html)
    reader.close()
    lines = "".join(reader.parts).split("\n")
    # Hundreds of nested blocks would leave hundreds of empty lines: one blank line is a break.
    return _BLANK_LINES.sub("\n\n", "\n".join(" ".join(line.split()) for line in lines)).strip()


def _has_words(html: str) -> bool:
    return any(c.isalnum() for c in flat_text(html))


class _TextNodes(FlatParser):
    """Collects text nodes, skipping hidden elements; block elements start a new line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)
