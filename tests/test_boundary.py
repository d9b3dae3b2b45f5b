"""The browser boundary (genstack.server.boundary): Host, Origin and Content-Type checks, and CORS
for the allowed origins only. On the fakes through the ASGI app; tests/test_browser_boundary.py
drives the same attacks from a real browser against a real `genstack serve`."""

from __future__ import annotations

import pytest

from tests._server import make_app

pytestmark = pytest.mark.unit
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from genstack.errors import ConfigError  # noqa: E402
from genstack.server import ServerConfig  # noqa: E402
from genstack.server.boundary import host_allowed, origin_allowed, split_host  # noqa: E402

LOCAL = "http://127.0.0.1"


def chat(content="hi"):
    return {"model": "fake", "messages": [{"role": "user", "content": content}], "temperature": 0}


@pytest.mark.parametrize("header, want", [
    ("localhost:8000", ("localhost", 8000)), ("LOCALHOST", ("localhost", None)), ("[::1]:80", ("::1", 80)),
    ("127.0.0.1", ("127.0.0.1", None)), ("example.com.:443", ("example.com", 443)), ("::1", ("::1", None)),
    ("a:b", ("", None)), ("[::1", ("", None)), ("[::1]x", ("", None)),
])
def test_split_host(header, want):
    assert split_host(header) == want


@pytest.mark.parametrize("host, bind, allowed, ok", [
    ("localhost:8000", "127.0.0.1", (), True),
    ("app.localhost", "127.0.0.1", (), True),
    ("127.0.0.1:8000", "127.0.0.1", (), True),
    ("127.5.6.7", "127.0.0.1", (), True),
    ("[::1]:8000", "127.0.0.1", (), True),
    ("attacker.example", "127.0.0.1", (), False),  # a rebound name
    ("attacker.example:8000", "127.0.0.1", (), False),
    ("localhost.attacker.example", "127.0.0.1", (), False),
    ("192.168.1.20", "127.0.0.1", (), False),  # not this server's address
    ("192.168.1.20:8000", "192.168.1.20", (), True),  # the bound address
    ("10.0.0.7", "0.0.0.0", (), True),  # bound to every address: any IP literal (never a rebound name)
    ("my-box", "0.0.0.0", (), False),
    ("my-box:8000", "0.0.0.0", ("my-box",), True),
    ("api.team.example", "0.0.0.0", (".team.example",), True),
    ("team.example", "0.0.0.0", (".team.example",), True),
    ("evilteam.example", "0.0.0.0", (".team.example",), False),
    ("anything.example", "127.0.0.1", ("*",), True),
    ("", "127.0.0.1", (), False),
])
def test_host_allowed(host, bind, allowed, ok):
    assert host_allowed(host, bind, allowed) is ok


def test_origin_allowed():
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000", "http")
    assert not origin_allowed("http://127.0.0.1:9000", "127.0.0.1:8000", "http")  # another local port is another site
    assert not origin_allowed("https://127.0.0.1:8000", "127.0.0.1:8000", "http")
    assert not origin_allowed("null", "127.0.0.1:8000", "http")
    assert origin_allowed("http://localhost:3000/", "127.0.0.1:8000", "http", ("http://localhost:3000",))


def test_a_foreign_host_is_refused_before_any_route(tmp_path):
    app, model, _ = make_app(tmp_path)
    with TestClient(app, base_url="http://attacker.example:8000") as c:
        for r in (c.get("/api/collections"), c.get("/ui/"), c.post("/v1/chat/completions", json=chat())):
            assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"
            assert "--allowed-host" in r.json()["error"]["message"]
        assert 'reason="host"' in TestClient(app, base_url=LOCAL).get("/metrics").text
    assert model.produced == 0


def test_allowed_host_setting_admits_a_name(tmp_path):
    app, _, _ = make_app(tmp_path, allowed_hosts=("genstack.lan",))
    with TestClient(app, base_url="http://genstack.lan:8000") as c:
        assert c.get("/api/collections").status_code == 200
        assert c.post("/v1/chat/completions", json=chat()).status_code == 200


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                   None])
def test_a_json_route_refuses_a_body_that_is_not_json_typed(tmp_path, ctype):
    app, model, settings = make_app(tmp_path)
    import json

    headers = {"content-type": ctype} if ctype else {}
    with TestClient(app, base_url=LOCAL) as c:
        r = c.post("/v1/chat/completions", content=json.dumps(chat()), headers=headers)
        assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
        r = c.post("/api/collections", content=json.dumps({"name": "x"}), headers=headers)
        assert r.status_code == 415
        assert [x["name"] for x in c.get("/api/collections").json()["collections"]] == []
        # the same bodies typed as JSON work
        assert c.post("/v1/chat/completions", json=chat()).status_code == 200
        assert c.post("/v1/chat/completions", content=json.dumps(chat()),
                      headers={"content-type": "application/json; charset=utf-8"}).status_code == 200
    assert model.produced == 2 * 3  # two replies of three tokens


def test_a_foreign_origin_may_change_nothing(tmp_path):
    app, model, _ = make_app(tmp_path)
    evil = {"origin": "http://attacker.example"}
    with TestClient(app, base_url=LOCAL) as c:
        r = c.post("/api/collections", json={"name": "planted"}, headers=evil)
        assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
        r = c.post("/api/collections/planted/documents?create=true", headers=evil,
                   files={"files": ("a.txt", b"planted text", "text/plain")})
        assert r.status_code == 403
        assert c.post("/v1/chat/completions", json=chat(), headers=evil).status_code == 403
        assert c.post("/api/collections", json={"name": "x"}, headers={"origin": "null"}).status_code == 403
        # a cross-origin read gets no CORS header (and is refused outright)
        r = c.get("/api/collections", headers=evil)
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
        # a preflight from it is refused, with no CORS headers
        r = c.options("/v1/chat/completions", headers={**evil, "access-control-request-method": "POST"})
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
        assert c.get("/api/collections").json()["collections"] == []
        # the server's own pages are same-origin
        own = {"origin": LOCAL}
        assert c.post("/v1/chat/completions", json=chat(), headers=own).status_code == 200
    assert model.produced == 3  # one reply


def test_an_allowed_origin_gets_cors(tmp_path):
    app, model, _ = make_app(tmp_path, allowed_origins=("http://localhost:3000",))
    mine = {"origin": "http://localhost:3000"}
    with TestClient(app, base_url=LOCAL) as c:
        r = c.options("/v1/chat/completions", headers={**mine, "access-control-request-method": "POST",
                                                       "access-control-request-headers": "authorization, content-type"})
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "POST" in r.headers["access-control-allow-methods"]
        assert r.headers["access-control-allow-headers"] == "authorization, content-type"
        r = c.post("/v1/chat/completions", json=chat(), headers=mine)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert r.headers["vary"].lower().count("origin") >= 1
        # another origin still gets nothing
        assert c.post("/v1/chat/completions", json=chat(), headers={"origin": "http://localhost:3001"}).status_code == 403
    assert model.produced == 3  # one reply


def test_bad_boundary_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="cors-origin must look like"):
        ServerConfig(allowed_origins=("localhost:3000",))
    with pytest.raises(ConfigError, match="cors-origin must look like"):
        ServerConfig(allowed_origins=("http://x.example/path",))
    with pytest.raises(ConfigError, match="allowed-host must be a host name"):
        ServerConfig(allowed_hosts=("http://x.example",))
    cfg = ServerConfig(allowed_hosts=("a.example",), allowed_origins=("http://a.example:3000/",))
    assert ServerConfig.from_json(cfg.to_json()) == cfg and cfg.allowed_origins == ("http://a.example:3000",)
