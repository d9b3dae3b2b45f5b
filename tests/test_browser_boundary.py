"""The browser boundary attacked from a real browser: a page on another local origin, and a
rebound DNS name, against a real `genstack serve` (genstack.server.boundary).

The attacker's page is served from a second port on 127.0.0.1: another origin to the browser, as
any web site is. Rebinding needs no DNS server: chromium's --host-resolver-rules maps a foreign
name to 127.0.0.1, exactly what a rebound DNS answer does."""

from __future__ import annotations

import http.server
import json
import sqlite3
import threading
import urllib.request
from functools import partial

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

from tests._browser import ARGS, CHROMIUM, sync_api  # noqa: E402  (skips the module without chromium)
from tests._server import free_port, serve_process  # noqa: E402


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture(scope="module")
def other_site(tmp_path_factory):
    """A plain web site on another port: the attacker's (or, when allowed, the user's own app)."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text("<!doctype html><title>some site</title><p>hello</p>")
    port = free_port()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()


def collections(server: str) -> set[str]:
    with urllib.request.urlopen(server + "/api/collections", timeout=30) as r:
        return {c["name"] for c in json.load(r)["collections"]}


def rejected(server: str, reason: str) -> float:
    text = urllib.request.urlopen(server + "/metrics", timeout=30).read().decode()
    for line in text.splitlines():
        if line.startswith(f'genstack_requests_rejected_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


# what a hostile page does: requests a browser sends to any origin without asking (no preflight)
ATTACKS = """async (server) => {
  const sent = async (url, init) => { try { await fetch(url, {...init, mode: 'no-cors'}); return 'sent'; }
                                      catch (e) { return 'error ' + e; } };
  const out = {};
  out.plain = await sent(server + '/api/collections', {method: 'POST', headers: {'Content-Type': 'text/plain'},
                                                       body: JSON.stringify({name: 'planted-plain'})});
  out.chat = await sent(server + '/v1/chat/completions', {method: 'POST', headers: {'Content-Type': 'text/plain'},
      body: JSON.stringify({model: 'smollm2-135m-instruct', messages: [{role: 'user', content: 'burn the cpu'}]})});
  const form = new FormData();
  form.append('files', new Blob(['planted text about kettles'], {type: 'text/plain'}), 'planted.txt');
  out.upload = await sent(server + '/api/collections/planted-upload/documents?create=true', {method: 'POST', body: form});
  // a read: the browser hides the answer from this page, and the server refuses to do the work
  try { const r = await fetch(server + '/api/collections'); out.read = 'read ' + r.status; }
  catch (e) { out.read = 'blocked'; }
  return out;
}"""


def test_a_page_from_another_origin_cannot_store_anything_or_run_the_model(browser, live_server, other_site):
    before = rejected(live_server, "origin")
    page = browser.new_page()
    page.goto(other_site + "/")
    out = page.evaluate(ATTACKS, live_server)
    assert out["plain"] == out["chat"] == out["upload"] == "sent" and out["read"] == "blocked", out
    # a form POST (text/plain, the classic JSON-in-a-form trick) navigates to the server's refusal
    page.set_content(f"""<form method="POST" action="{live_server}/api/collections" enctype="text/plain">
        <input name='{{"name": "planted-form", "x": "' value='"}}'></form>""")
    with page.expect_navigation():
        page.evaluate("() => document.forms[0].submit()")
    assert "origin_not_allowed" in page.content()
    page.close()
    assert not {"planted-plain", "planted-upload", "planted-form"} & collections(live_server)
    assert rejected(live_server, "origin") - before == 5  # plain, chat, upload, read and the form
    if (live_server.home / "server.db").exists():  # the request log never saw the page's prompt
        db = sqlite3.connect(f"file:{live_server.home / 'server.db'}?mode=ro", uri=True)
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'requests'").fetchone():
            assert db.execute("SELECT count(*) FROM requests WHERE request LIKE '%burn the cpu%'").fetchone()[0] == 0
        db.close()


def test_the_same_page_on_an_allowed_origin_may_call_the_api(browser, other_site, tmp_path):
    with serve_process(tmp_path, "--rate-limit", "0", "--cors-origin", other_site, ingest=False) as server:
        page = browser.new_page()
        page.goto(other_site + "/")
        got = page.evaluate("""async (server) => {
            const r = await fetch(server + '/api/collections', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: JSON.stringify({name: 'from-my-app'})});
            return [r.status, (await r.json()).name];
        }""", server)
        page.close()
        assert got == [201, "from-my-app"]
        assert "from-my-app" in collections(server)


def test_a_rebound_name_reaches_neither_the_ui_nor_the_api(playwright, live_server):
    port = live_server.rsplit(":", 1)[1]
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                   args=ARGS + ["--host-resolver-rules=MAP attacker.test 127.0.0.1"])
    try:
        page = b.new_page()
        r = page.goto(f"http://attacker.test:{port}/ui/")
        assert r.status == 403 and "host_not_allowed" in page.content()
        # the page is same-origin with the server now: its fetches are refused by name, not by the browser
        got = page.evaluate("""async () => {
            const r = await fetch('/api/collections/docs/search', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: JSON.stringify({query: 'kettle'})});
            return [r.status, await r.text()];
        }""")
        assert got[0] == 403 and "host_not_allowed" in got[1] and "kettle" not in got[1].lower()
        # the user's own name still works in the same browser
        assert page.goto(f"http://localhost:{port}/ui/").status == 200
    finally:
        b.close()
