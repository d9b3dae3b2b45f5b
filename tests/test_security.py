"""Security controls that need no model: supply chain (no pickle), hostile upload paths, per-key collections."""

from __future__ import annotations

import ast
import itertools
import sys
from pathlib import Path

import pytest

from tests._server import ingest_sample, make_app

pytestmark = pytest.mark.unit
SRC = Path(__file__).resolve().parents[1] / "src" / "genstack"

# -- LLM03 supply chain ------------------------------------------------------------------------
UNSAFE_CALLS = {("pickle", "load"), ("pickle", "loads"), ("torch", "load"), ("joblib", "load"),
                ("dill", "load"), ("cloudpickle", "load"), ("pickle", "Unpickler"), ("marshal", "loads")}


def test_no_code_path_unpickles_anything():
    """Fails if any module calls pickle/torch/joblib loading, or np.load with allow_pickle=True."""
    offenders = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offenders += [f"{path.name}: import {a.name}" for a in node.names if a.name in ("pickle", "dill", "cloudpickle", "joblib")]
            if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "dill", "cloudpickle", "joblib"):
                offenders.append(f"{path.name}: from {node.module} import …")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
                if (node.func.value.id, node.func.attr) in UNSAFE_CALLS:
                    offenders.append(f"{path.name}:{node.lineno}: {node.func.value.id}.{node.func.attr}")
                if node.func.attr == "load" and node.func.value.id in ("np", "numpy"):
                    if any(k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                           for k in node.keywords):
                        offenders.append(f"{path.name}:{node.lineno}: np.load(allow_pickle=...)")
    assert offenders == []


def test_pickle_model_files_are_refused(tmp_path):
    from genstack.errors import UnsupportedModelFormat
    from genstack.models.formats import check_format

    for name in ("model.bin", "model.pt", "weights.pkl", "model.ckpt"):
        p = tmp_path / name
        p.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # a pickle header
        with pytest.raises(UnsupportedModelFormat):
            check_format(p)


# -- hostile upload names and paths --------------------------------------------------------------
PREFIXES = ["../", "../../", "..\\", "..\\..\\", "/", "/etc/", "C:\\", "C:/", "%2e%2e%2f", "..%2f", "%2e%2e/",
            "..%252f", "\u2024\u2024/", "\uff0e\uff0e\uff0f", "..\u2215", "..\u29f8", "~/", "//server/share/",
            "file:///", "....//", "./../", "\x00../", "a/../../"]
TARGETS = ["outside/pwn", "etc/passwd", "home/user/.bashrc", ".ssh/authorized_keys", "outside/evil", "x"]
SUFFIXES = [".md", ".txt", ".md\x00.exe", ".exe", ".MD", "", ".md/", ".html", "%00.md"]


def hostile_names() -> list[str]:
    names = [p + t + s for p, t, s in itertools.product(PREFIXES, TARGETS, SUFFIXES)]
    names += ["..", ".", "...", "", " ", "\x00", "/", "\\", "con.md", "a" * 5000 + ".md", "zip://a.zip!/../../x.md",
              "archive.zip", "../archive.tar.gz"]
    return names


def test_at_least_1000_hostile_names_never_touch_anything_outside_the_data_dir(tmp_path):
    from fastapi.testclient import TestClient

    names = hostile_names()
    assert len(names) >= 1000
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("do not touch")
    app, _, settings = make_app(tmp_path, rate_limit=0)
    data_dir = settings.data_dir.resolve()
    # a symlink planted in the uploads folder must not be written through
    up = data_dir / "uploads" / "docs"
    up.mkdir(parents=True)
    (up / "link.md").symlink_to(outside / "secret.md")
    names.append("link.md")

    touched: list[str] = []
    active = [False]

    def audit(event, args):
        if active[0] and event in ("open", "os.rename", "os.replace", "os.remove", "os.mkdir", "os.symlink", "shutil.rmtree"):
            target = args[0]
            if isinstance(target, (str, bytes, Path)):
                touched.append((event, str(target if not isinstance(target, bytes) else target.decode(errors="replace"))))

    sys.addaudithook(audit)
    statuses: dict[int, int] = {}
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.post("/api/collections", json={"name": "docs"}).status_code == 201  # uploads never create one
        active[0] = True
        try:
            for name in names:
                files = [("files", (name, b"# hostile\n\nSome text.", "text/markdown"))]
                try:
                    r = c.post("/api/collections/docs/documents", files=files)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                except Exception as exc:  # the client itself may refuse to encode a name
                    statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
            for coll in ["..", "../outside", "..%2F..%2Foutside", "%2e%2e", "a/../../b", "\u2024\u2024"]:
                r = c.post(f"/api/collections/{coll}/documents", files=[("files", ("a.md", b"x", "text/markdown"))])
                assert r.status_code in (400, 404, 405)
        finally:
            active[0] = False
    assert (outside / "secret.md").read_text() == "do not touch"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.md"]
    escaped = []
    for event, path in touched:
        p = Path(path)
        if not p.is_absolute():
            continue
        resolved = Path(path).resolve() if event != "os.symlink" else p
        if str(resolved).startswith(str(tmp_path)) and not str(resolved).startswith(str(data_dir)):
            escaped.append((event, path))
        if str(resolved).startswith(("/etc", "/root/.ssh", "/home")):
            escaped.append((event, path))
    assert escaped == []
    assert statuses.get(202, 0) > 0 and statuses.get(500, 0) == 0, statuses
    assert any(str(data_dir) in p for _, p in touched)  # the hook did see the writes inside
    for p in (data_dir / "uploads").rglob("*"):
        assert p.resolve().is_relative_to(data_dir) or p.name == "link.md"


# -- LLM08 collections per API key -------------------------------------------------------------------
def test_each_key_sees_only_its_collections(tmp_path):
    from fastapi.testclient import TestClient

    app, _, settings = make_app(tmp_path, api_keys=("alice:docs", "bob:notes", "admin"), rate_limit=0)
    ingest_sample(settings, "docs")
    ingest_sample(settings, "notes")
    A, B, ADMIN = ({"Authorization": f"Bearer {k}"} for k in ("alice", "bob", "admin"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        names = lambda h: {x["name"] for x in c.get("/api/collections", headers=h).json()["collections"]}  # noqa: E731
        assert names(A) == {"docs"} and names(B) == {"notes"} and names(ADMIN) == {"docs", "notes"}
        models = {m["id"] for m in c.get("/v1/models", headers=A).json()["data"]}
        assert "rag:docs" in models and "rag:notes" not in models
        q = {"model": "rag:notes", "messages": [{"role": "user", "content": "kettle capacity?"}]}
        assert c.post("/v1/chat/completions", json=q, headers=A).status_code == 404
        assert c.post("/v1/chat/completions", json=q, headers=B).status_code == 200
        assert c.post("/api/collections/notes/search", json={"query": "kettle"}, headers=A).status_code == 404
        assert c.post("/api/collections/docs/search", json={"query": "kettle"}, headers=A).status_code == 200
        assert c.delete("/api/collections/notes", headers=A).status_code == 404
        r = c.post("/api/collections/notes/documents", files=[("files", ("a.md", b"x y z", "text/markdown"))], headers=A)
        assert r.status_code == 404
        assert c.post("/api/collections", json={"name": "new"}, headers=A).status_code == 404
        assert c.post("/api/collections", json={"name": "new"}, headers=ADMIN).status_code == 201
