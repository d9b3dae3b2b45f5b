"""One loader per format. Each takes a path and returns Documents, or raises
:class:`LoadError` with a one-line reason.

=========  ==============================================================
format     what comes out
=========  ==============================================================
.txt .md   the file as one document (UTF-8; other encodings are refused)
.html      main text only: scripts, styles, navigation, headers, footers,
           forms and hidden elements are dropped; <main>/<article> preferred
.pdf       one document per page, with ``page`` (1-based) in the metadata
.docx      paragraphs, with headings turned into markdown ``#`` lines
.json      a list of records or one record; ``text_field`` names the text
.jsonl     one record per line; ``text_field`` names the text
.csv       the whole table as text, or with ``csv_rows=True`` one document
           per row (``column: value`` lines, ``row`` in the metadata)
=========  ==============================================================
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .base import Document, LoadError

__all__ = ["LoaderOptions", "load_file", "LOADERS", "SUPPORTED_SUFFIXES"]


@dataclass(frozen=True)
class LoaderOptions:
    #: the field holding the text in .json/.jsonl records
    text_field: str = "text"
    #: one document per CSV row instead of one per file
    csv_rows: bool = False


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise LoadError(str(path), "looks binary (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(str(path), f"not valid UTF-8 (byte {exc.start})") from None


def _title_from_markdown(text: str, path: Path) -> str:
    m = re.search(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", text, re.M)
    return m.group(1).strip() if m else path.stem


def load_text(path: Path, opts: LoaderOptions) -> list[Document]:
    text = _read_text(path)
    title = _title_from_markdown(text, path) if path.suffix.lower() == ".md" else path.stem
    return [Document(text, {"source": str(path), "title": title, "format": path.suffix.lower().lstrip(".")})]


_DROP = "script, style, noscript, template, svg, iframe, nav, header, footer, aside, form, button, select, [hidden], [aria-hidden=true]"
_BLOCKS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "br", "pre", "blockquote",
           "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "figcaption", "td", "th"}


def load_html(path: Path, opts: LoaderOptions) -> list[Document]:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    raw = _read_text(path)
    tree = HTMLParser(raw)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    from .hidden import hidden_nodes

    hidden: list[tuple[str, str]] = []  # (reason, text) of what a reader would not see
    for node, reason in hidden_nodes(tree):
        try:
            text_hidden = " ".join(node.text(separator=" ").split())
            node.decompose()
        except Exception:  # already removed with an ancestor
            continue
        if text_hidden:
            hidden.append((reason, text_hidden[:200]))
    for node in tree.css(_DROP):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.body or tree.root
    if root is None:
        raise LoadError(str(path), "no HTML body")
    parts: list[str] = []

    def walk(node) -> None:
        for child in node.iter(include_text=True):
            if child.tag == "-text":
                parts.append(child.text_content or "")
            else:
                tag = child.tag
                if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                    parts.append("\n\n" + "#" * int(tag[1]) + " " + child.text(separator=" ", strip=True) + "\n\n")
                    continue
                if tag in _BLOCKS:
                    parts.append("\n\n" if tag not in ("li", "tr", "br", "td", "th") else "\n")
                walk(child)
                if tag in _BLOCKS:
                    parts.append("\n\n" if tag not in ("li", "tr", "br", "td", "th") else "\n")

    walk(root)
    text = "".join(parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not title:
        h1 = tree.css_first("h1")
        title = h1.text(strip=True) if h1 else path.stem
    meta = {"source": str(path), "title": title, "format": "html"}
    if hidden:  # dropped from the text, kept as evidence
        meta["flags"] = ["hidden-text"]
        meta["hidden_text"] = [f"{r}: {t}" for r, t in hidden[:20]]
    return [Document(text, meta)]


def load_pdf(path: Path, opts: LoaderOptions) -> list[Document]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise LoadError(str(path), "the PDF is encrypted")
        title = (reader.metadata.title if reader.metadata and reader.metadata.title else None) or path.stem
        docs = []
        for i, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            if text.strip():
                docs.append(Document(text, {"source": str(path), "title": str(title), "page": i, "format": "pdf"}))
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(str(path), f"cannot read PDF: {exc}") from None
    return docs


def load_docx(path: Path, opts: LoaderOptions) -> list[Document]:
    import zipfile

    try:
        import docx
    except ImportError:  # pragma: no cover - core dependency
        raise LoadError(str(path), "python-docx is not installed") from None
    from docx.opc.exceptions import PackageNotFoundError

    try:
        d = docx.Document(str(path))
    except PackageNotFoundError:
        raise LoadError(str(path), "cannot read DOCX: not a Word document (bad zip package)") from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise LoadError(str(path), f"cannot read DOCX: {exc or type(exc).__name__}") from None
    lines = []
    for para in d.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name or "").lower() if para.style is not None else ""
        m = re.match(r"heading (\d)", style)
        if m:
            lines.append("#" * int(m.group(1)) + " " + text)
        elif style == "title":
            lines.append("# " + text)
        else:
            lines.append(text)
    for table in d.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    title = (d.core_properties.title or "").strip() or path.stem
    return [Document("\n\n".join(lines), {"source": str(path), "title": title, "format": "docx"})]


def _record_doc(rec, path: Path, opts: LoaderOptions, index: int) -> Document:
    if not isinstance(rec, dict):
        raise LoadError(str(path), f"record {index} is not an object")
    if opts.text_field not in rec:
        raise LoadError(str(path), f"record {index} has no field {opts.text_field!r} (set --text-field)")
    text = rec[opts.text_field]
    if not isinstance(text, str):
        raise LoadError(str(path), f"record {index}: field {opts.text_field!r} is not a string")
    meta = {k: v for k, v in rec.items() if k != opts.text_field and isinstance(v, (str, int, float, bool))}
    meta.update({"source": str(path), "record": index, "format": path.suffix.lower().lstrip(".")})
    meta.setdefault("title", str(rec.get("title") or f"{path.stem} #{index}"))
    return Document(text, meta)


def load_json(path: Path, opts: LoaderOptions) -> list[Document]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise LoadError(str(path), f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    records = data if isinstance(data, list) else [data]
    return [_record_doc(r, path, opts, i) for i, r in enumerate(records)]


def load_jsonl(path: Path, opts: LoaderOptions) -> list[Document]:
    docs = []
    for i, line in enumerate(_read_text(path).splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoadError(str(path), f"invalid JSON on line {i + 1}: {exc.msg}") from None
        docs.append(_record_doc(rec, path, opts, i))
    return docs


def load_csv(path: Path, opts: LoaderOptions) -> list[Document]:
    text = _read_text(path)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise LoadError(str(path), f"invalid CSV: {exc}") from None
    if not rows:
        raise LoadError(str(path), "the CSV is empty")
    header, body = rows[0], rows[1:]
    if not opts.csv_rows:
        return [Document(text, {"source": str(path), "title": path.stem, "format": "csv"})]
    docs = []
    for i, row in enumerate(body, start=1):
        if not any(cell.strip() for cell in row):
            continue
        lines = [f"{h}: {v}" for h, v in zip(header, row) if v.strip()]
        docs.append(Document("\n".join(lines), {"source": str(path), "title": f"{path.stem} row {i}", "row": i, "format": "csv"}))
    return docs


LOADERS: dict[str, Callable[[Path, LoaderOptions], list[Document]]] = {
    ".txt": load_text, ".md": load_text, ".markdown": load_text,
    ".html": load_html, ".htm": load_html,
    ".pdf": load_pdf, ".docx": load_docx,
    ".json": load_json, ".jsonl": load_jsonl, ".csv": load_csv,
}
SUPPORTED_SUFFIXES = frozenset(LOADERS)


def load_file(path: str | Path, opts: LoaderOptions | None = None) -> list[Document]:
    """Load one file; raise LoadError (never anything else) when it cannot be read."""
    path = Path(path)
    opts = opts or LoaderOptions()
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(str(path), f"unsupported file type {path.suffix or '(none)'!r}")
    try:
        if path.stat().st_size == 0:
            raise LoadError(str(path), "the file is empty")
        docs = loader(path, opts)
    except LoadError:
        raise
    except PermissionError:
        raise LoadError(str(path), "permission denied") from None
    except OSError as exc:
        raise LoadError(str(path), exc.strerror or str(exc)) from None
    except Exception as exc:  # a parser bug or an exotic corrupt file: still one line, still skipped
        raise LoadError(str(path), f"cannot parse ({type(exc).__name__}: {exc})") from None
    if not any(d.text.strip() for d in docs):
        raise LoadError(str(path), "no text found")
    return [d for d in docs if d.text.strip()]
