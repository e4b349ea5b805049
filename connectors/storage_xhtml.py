"""Confluence storage format (XHTML with `ac:` and `ri:` elements) to the text a person sees.

Storage format: confluence.atlassian.com/doc/confluence-storage-format-790796544.html. It is
rarely well-formed XML (HTML entities such as `&nbsp;`, undeclared `ac:` namespaces), so the
standard library's forgiving HTML tokenizer reads it, and the rules here decide what comes out:

- Block elements (paragraphs, headings, list items, table rows, macros and their parameters)
  start a new line; inline elements (`span`, `strong`, `code`, links) do not, so a key split
  by markup (`<span>sk-proj-abc</span><span>def…</span>`) comes out whole, as a reader sees it.
- Code and noformat macros keep their `<![CDATA[…]]>` bodies line by line, unescaped, as XML says.
- Entities are decoded; non-breaking spaces become spaces; runs of white space collapse outside
  CDATA and `<pre>`, as a browser renders them.
- Table cells are separated by " | "; `ac:parameter` values (macro settings such as a title or
  a URL) are their own lines; a link's target is shown after its label when it differs, so a
  token in a URL's query string is seen.

`storage_to_text` never raises: on input the tokenizer cannot handle it falls back to removing
tags, so one odd page cannot stop a poll.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

MAX_STORAGE_CHARS = 5_000_000  # longer bodies are cut; Confluence pages rarely pass 1 MB

_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details",
        "div", "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
        "table", "tbody", "tfoot", "thead", "title", "tr", "ul",
        "ac:layout", "ac:layout-cell", "ac:layout-section", "ac:macro", "ac:parameter",
        "ac:plain-text-body", "ac:rich-text-body", "ac:structured-macro", "ac:task",
        "ac:task-body", "ac:task-list", "ac:adf-extension", "ac:adf-node", "ac:adf-content",
    }
)  # fmt: skip
_CELL = frozenset({"td", "th"})
_PREFORMATTED = frozenset({"pre", "ac:plain-text-body", "ac:plain-text-link-body"})
_HIDDEN = frozenset({"script", "style", "head"})
_LINK_TARGETS = {"ri:url": "ri:value", "time": "datetime"}
_SPACE = re.compile(r"[\s\u00a0\u200b\ufeff]+")
_TAG = re.compile(r"<[^>]*>")


def storage_to_text(storage: str) -> str:
    """The text a reader of the rendered page sees, one block per line."""
    storage = storage[:MAX_STORAGE_CHARS]
    reader = _StorageReader()
    try:
        reader.feed(storage)
        reader.close()
    except Exception:  # the tokenizer's failures are not part of its contract; degrade, never stop
        return _strip_tags(storage)
    return reader.text()


def _strip_tags(storage: str) -> str:
    text = html.unescape(_TAG.sub("\n", storage.replace("<![CDATA[", "").replace("]]>", "")))
    lines = (_SPACE.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


class _StorageReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[str] = []
        self._line: list[str] = []
        self._preformatted = 0
        self._hidden = 0
        self._links: list[tuple[str, int]] = []  # (href, length of the text before the label)
        self._cells_in_row = 0

    # output --------------------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        if text:
            self._line.append(text)

    def _newline(self) -> None:
        line = "".join(self._line)
        line = line.rstrip() if self._preformatted else _SPACE.sub(" ", line).strip()
        if line.strip():
            self._lines.append(line)
        self._line = []

    def _current(self) -> str:
        return "".join(self._line)

    def text(self) -> str:
        self._newline()
        return "\n".join(self._lines)

    # tokenizer callbacks -----------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
            return
        if tag in _BLOCK:
            self._newline()
        if tag == "tr":
            self._cells_in_row = 0
        elif tag in _CELL:
            if self._cells_in_row:
                self._emit(" | ")
            self._cells_in_row += 1
        if tag in _PREFORMATTED:
            self._preformatted += 1
        values = dict(attrs)
        if tag == "a":
            self._links.append((values.get("href") or "", len(self._current())))
        elif tag in _LINK_TARGETS:
            target = values.get(_LINK_TARGETS[tag]) or ""
            if target:
                self._emit(f" {target} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
            return
        if tag == "a" and self._links:
            href, _ = self._links.pop()
            if href and not href.startswith("#") and href not in self._current():
                self._emit(f" ({href})")
        if tag in _BLOCK:
            self._newline()
        if tag in _PREFORMATTED:
            self._preformatted = max(0, self._preformatted - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _PREFORMATTED and tag not in _HIDDEN:
            self.handle_endtag(tag)
        elif tag in _PREFORMATTED:
            self._preformatted = max(0, self._preformatted - 1)
        else:
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._preformatted:
            self._emit_lines(data)
        else:
            self._emit(_SPACE.sub(" ", data))

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA[") and not self._hidden:
            self._emit_lines(data[6:])

    def _emit_lines(self, text: str) -> None:
        """Preformatted text: each of its lines stays a line."""
        pieces = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._preformatted += 1  # keep indentation while these lines are closed
        for index, piece in enumerate(pieces):
            if index:
                self._newline()
            self._emit(piece.replace("\u00a0", " "))
        self._preformatted -= 1
