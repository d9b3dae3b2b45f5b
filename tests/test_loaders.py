import json
import os

import pytest

from genstack.documents import LoaderOptions, LoadError, load_file, walk_paths

pytestmark = pytest.mark.unit


def make_pdf(path, pages):
    """A minimal valid PDF with one text line per page (no dependencies)."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objs.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        content = len(objs)
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
                    "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objs)} 0 R")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)
    return path


def test_txt_and_md(tmp_path):
    (tmp_path / "a.txt").write_text("plain text")
    (tmp_path / "b.md").write_text("intro\n\n# The Title\n\nbody")
    assert load_file(tmp_path / "a.txt")[0].text == "plain text"
    md = load_file(tmp_path / "b.md")[0]
    assert md.metadata["title"] == "The Title" and md.metadata["source"].endswith("b.md")


def test_html_keeps_main_text_only(tmp_path):
    html = """<html><head><title>Page</title><style>.x{color:red}</style>
    <script>var secret = 1;</script></head><body>
    <nav><a href="/">Home</a> | <a href="/about">About</a></nav>
    <header>Site header</header>
    <main><h1>Article</h1><p>First <b>bold</b> paragraph.</p><p>Second paragraph.</p>
    <div hidden>hidden text</div></main>
    <footer>Copyright footer</footer></body></html>"""
    (tmp_path / "p.html").write_text(html)
    doc = load_file(tmp_path / "p.html")[0]
    assert doc.metadata["title"] == "Page"
    assert "First bold paragraph." in doc.text and "Second paragraph." in doc.text
    assert "# Article" in doc.text
    for junk in ("secret", "color:red", "Home", "Site header", "Copyright", "hidden text"):
        assert junk not in doc.text


def test_pdf_pages_keep_their_numbers(tmp_path):
    path = make_pdf(tmp_path / "doc.pdf", ["Hello page one", "Second page here"])
    docs = load_file(path)
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert "Hello page one" in docs[0].text and "Second page here" in docs[1].text


def test_docx_headings_become_markdown(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Report", level=1)
    d.add_paragraph("The body text.")
    d.add_heading("Details", level=2)
    d.add_paragraph("More text.")
    d.save(tmp_path / "r.docx")
    doc = load_file(tmp_path / "r.docx")[0]
    assert "# Report" in doc.text and "## Details" in doc.text and "The body text." in doc.text


def test_json_and_jsonl_with_text_field(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"body": "one", "lang": "en"}, {"body": "two"}]))
    (tmp_path / "b.jsonl").write_text('{"body": "x", "id": 7}\n\n{"body": "y"}\n')
    opts = LoaderOptions(text_field="body")
    docs = load_file(tmp_path / "a.json", opts)
    assert [d.text for d in docs] == ["one", "two"] and docs[0].metadata["lang"] == "en"
    docs = load_file(tmp_path / "b.jsonl", opts)
    assert [d.text for d in docs] == ["x", "y"] and docs[0].metadata["id"] == 7
    with pytest.raises(LoadError, match="no field 'text'"):
        load_file(tmp_path / "a.json")


def test_csv_whole_or_rows(tmp_path):
    (tmp_path / "t.csv").write_text("name,role\nAda,engineer\nAlan,mathematician\n")
    assert len(load_file(tmp_path / "t.csv")) == 1
    rows = load_file(tmp_path / "t.csv", LoaderOptions(csv_rows=True))
    assert [d.text for d in rows] == ["name: Ada\nrole: engineer", "name: Alan\nrole: mathematician"]
    assert rows[1].metadata["row"] == 2


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"", "the file is empty"),
        ("blank.md", b"   \n\n ", "no text found"),
        ("bad.pdf", b"%PDF-1.4 this is not really a pdf", "cannot read PDF"),
        ("bad.docx", b"PK\x03\x04 not a zip", "cannot read DOCX"),
        ("bad.json", b'{"text": ', "invalid JSON"),
        ("bad.jsonl", b'{"text": "ok"}\n{broken\n', "invalid JSON on line 2"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not valid UTF-8"),
        ("bin.txt", b"\x00\x01\x02binary", "looks binary"),
        ("x.exe", b"MZ", "unsupported file type"),
    ],
)
def test_broken_files_raise_load_error_with_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as info:
        load_file(path)
    assert reason in str(info.value) and str(path) in str(info.value)


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(LoadError, match="permission denied"):
        load_file(path)


def test_walk_include_exclude_hidden_and_binaries(tmp_path):
    (tmp_path / "docs" / "drafts").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "docs" / "a.md").write_text("a")
    (tmp_path / "docs" / "b.txt").write_text("b")
    (tmp_path / "docs" / "drafts" / "c.md").write_text("c")
    (tmp_path / ".git" / "config.txt").write_text("git")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    names = lambda w: sorted(p.relative_to(tmp_path).as_posix() for p in w.files)  # noqa: E731
    assert names(walk_paths([tmp_path])) == ["docs/a.md", "docs/b.txt", "docs/drafts/c.md"]
    assert names(walk_paths([tmp_path], include=["*.md"])) == ["docs/a.md", "docs/drafts/c.md"]
    assert names(walk_paths([tmp_path], exclude=["docs/drafts/*"])) == ["docs/a.md", "docs/b.txt"]
    assert walk_paths([tmp_path / "nope"]).missing == [(str(tmp_path / "nope"), "no such file or folder")]


def test_walk_never_follows_symlinks_out_of_the_tree(tmp_path):
    outside = tmp_path / "outside"
    tree = tmp_path / "tree"
    outside.mkdir()
    tree.mkdir()
    (outside / "secret.txt").write_text("secret")
    (tree / "ok.txt").write_text("ok")
    (tree / "inner.txt").write_text("inner")
    (tree / "link-out.txt").symlink_to(outside / "secret.txt")
    (tree / "link-dir").symlink_to(outside, target_is_directory=True)
    (tree / "link-in.txt").symlink_to(tree / "inner.txt")
    found = {p.name for p in walk_paths([tree]).files}
    assert found == {"ok.txt", "inner.txt"}  # link-in duplicates inner.txt, so it is listed once
