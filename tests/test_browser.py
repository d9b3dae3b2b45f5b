"""The web UI end to end in headless Chromium (Debian's package, driven by Playwright; no browser download)."""

from __future__ import annotations

import sqlite3

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

from tests._browser import ARGS, CHROMIUM, sync_api  # noqa: E402  (skips the module without chromium)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context()
    page = context.new_page()
    page.outside_requests = []
    page.on("request", lambda r: None if r.url.startswith(live_server) else page.outside_requests.append(r.url))
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(live_server + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page
    context.close()


def test_page_loads_with_models_and_collections(page):
    models = page.eval_on_selector_all("#model option", "els => els.map(e => e.value)")
    assert "smollm2-135m-instruct" in models
    collections = page.eval_on_selector_all("#collection option", "els => els.map(e => e.value)")
    assert "docs" in collections
    for slider in ("temperature", "top_k", "top_p", "max_tokens"):
        assert page.locator(f"#{slider}").count() == 1
    assert page.errors == []


def test_ask_streams_an_answer_with_clickable_citations_and_feedback(page, live_server):
    page.select_option("#collection", "docs")
    page.fill("#prompt", "What is the capacity of the Brewmaster K7 kettle?")
    page.click("#send")
    # text appears while the answer is still streaming
    page.wait_for_function(
        "() => { const m = document.querySelector('.msg.assistant'); "
        "return m && m.querySelector('.content').textContent.length > 0 && !m.dataset.done; }", timeout=60_000)
    page.wait_for_selector(".msg.assistant[data-done='1']", timeout=120_000)
    answer = page.locator(".msg.assistant .content").inner_text()
    assert "1.7" in answer
    cite = page.locator(".msg.assistant .content .cite").first
    assert cite.count() == 1
    cite.click()
    assert page.locator("#source-panel").is_visible()
    assert "1.7" in page.locator("#source-text").inner_text()
    assert "kettle" in page.locator("#source-title").inner_text()
    page.click(".msg.assistant .fb-up")
    page.wait_for_selector(".msg.assistant .fb-up.chosen")
    db = sqlite3.connect(live_server.home / "server.db")
    rating, answer_stored, messages = db.execute(
        "SELECT rating, answer, messages FROM feedback ORDER BY rowid DESC LIMIT 1").fetchone()
    assert rating == 1 and "1.7" in answer_stored and "Brewmaster" in messages
    assert page.outside_requests == [] and page.errors == []


def test_plain_chat_streams_an_answer_without_error(page):
    page.select_option("#collection", "")
    page.fill("#prompt", "What is the capital of France?")
    page.click("#send")
    page.wait_for_selector(".msg.assistant[data-done='1']", timeout=120_000)
    msg = page.locator(".msg.assistant").last
    assert "error" not in (msg.get_attribute("class") or "")
    answer = msg.locator(".content").inner_text()
    assert answer.strip() and not answer.startswith("error:")
    assert msg.locator(".fb-up").count() == 1 and page.errors == []
    # the feedback icons are drawn, not emoji that need a font: each button has a visible SVG of real size
    for cls in ("fb-up", "fb-down"):
        box = msg.locator(f".{cls} svg").bounding_box()
        assert box and box["width"] >= 12 and box["height"] >= 12


def test_an_error_response_is_shown_as_one_line(page):
    page.select_option("#collection", "")
    page.fill("#prompt", "word " * 5000)  # longer than the model's window
    page.click("#send")
    page.wait_for_selector(".msg.assistant.error", timeout=60_000)
    text = page.locator(".msg.assistant.error .content").inner_text()
    assert text.startswith("error: ") and "token" in text and page.errors == []


def test_upload_with_progress_then_search_it(page, tmp_path):
    doc = tmp_path / "otters.md"
    doc.write_text("# Sea otters\n\nSea otters hold hands while they sleep so that they do not drift apart.\n")
    page.select_option("#collection", "")
    page.fill("#new-collection", "notes")
    page.set_input_files("#file", str(doc))
    page.click("#upload")
    page.wait_for_selector("#upload-status[data-state='done']", timeout=60_000)
    assert page.locator("#upload-progress").get_attribute("value") == "100"
    assert "1 added" in page.locator("#upload-status").inner_text()
    assert page.locator("#collection").input_value() == "notes"
    page.fill("#search-input", "otters sleeping")
    page.click("#search-btn")
    page.wait_for_selector("#search-results li")
    first = page.locator("#search-results li").first.inner_text()
    assert "otters.md" in first and "hold hands" in first


def test_document_text_is_shown_as_text_never_as_html(page, tmp_path):
    doc = tmp_path / "evil.md"
    doc.write_text("# Tricks\n\nMalicious payload <img src=x onerror=\"window.__xss=1\"> here. "
                   "![pixel](http://evil.example/track.png) and [click me](http://evil.example/phish) too.\n")
    page.select_option("#collection", "")
    page.fill("#new-collection", "tricks")
    page.set_input_files("#file", str(doc))
    page.click("#upload")
    page.wait_for_selector("#upload-status[data-state='done']", timeout=60_000)
    page.fill("#search-input", "malicious payload tricks")
    page.click("#search-btn")
    page.wait_for_selector("#search-results li")
    text = page.locator("#search-results").inner_text()
    assert "<img src=x" in text  # shown literally
    assert "[image removed: pixel]" in text and "(link to evil.example removed)" in text
    assert page.evaluate("window.__xss") is None
    assert page.locator("#search-results img, #search-results a").count() == 0
    assert not [u for u in page.outside_requests if "evil.example" in u]


def test_arena_battle_streams_both_sides_hides_names_until_the_vote_then_rates(page, live_server):
    page.click("#tab-arena")
    assert page.locator("#arena").is_visible() and not page.locator("#chat").is_visible()
    page.fill("#max_tokens", "48")
    page.dispatch_event("#max_tokens", "input")
    page.fill("#arena-prompt", "What is the capital of France?")
    page.click("#arena-send")
    # both sides stream before either has finished
    page.wait_for_function(
        "() => ['a', 'b'].every(s => document.querySelector('#side-' + s + ' .content').textContent.length > 0)",
        timeout=120_000)
    page.wait_for_selector("#arena[data-state='voting']", timeout=120_000)
    assert page.locator("#side-a[data-done='1']").count() == 1 and page.locator("#side-b[data-done='1']").count() == 1
    served = {"smollm2-135m-instruct", "gemma3-270m"}
    heads = page.locator("#side-a h3").inner_text() + page.locator("#side-b h3").inner_text()
    assert not any(name in heads for name in served)  # anonymous until the vote
    answers = {s: page.locator(f"#side-{s} .content").inner_text() for s in ("a", "b")}
    page.click("#arena-vote button[data-winner='a']")
    page.wait_for_selector("#arena[data-state='voted']", timeout=30_000)
    reveal = page.locator("#arena-reveal").inner_text()
    a_name = page.locator("#side-a h3").inner_text().split(": ", 1)[1]
    b_name = page.locator("#side-b h3").inner_text().split(": ", 1)[1]
    assert {a_name, b_name} == served and f"A was {a_name}" in reveal
    page.wait_for_selector("#arena-board[data-loaded='1']", timeout=30_000)
    rows = page.locator("#arena-board tbody tr")
    assert rows.count() == 2 and a_name in rows.first.inner_text()  # the winner leads
    matrix = page.locator("#arena-matrix").inner_text()
    assert "1.00 (" in matrix and "0.00 (" in matrix  # observed (predicted) win rates of the one battle
    db = sqlite3.connect(live_server.home / "arena.db")
    row = db.execute("SELECT model_a, model_b, winner, voter, answer_a, params FROM battles").fetchall()
    assert len(row) == 1
    model_a, model_b, winner, voter, answer_a, params = row[0]
    assert (model_a, model_b, winner) == (a_name, b_name, "model_a") and voter.startswith("ip-")
    assert answer_a.strip() and answer_a.split()[0] in answers["a"]
    assert '"max_tokens": 48' in params
    assert page.outside_requests == [] and page.errors == []


def test_an_empty_arena_answer_is_shown_as_no_answer(page):
    """A model that returns nothing (Gemma 3 270M base sometimes does) must not look like a blank panel
    the user votes on by mistake. The battle stream is the server's format, served by the page's route."""
    import json

    events = [{"side": "a", "delta": "Paris."}, {"side": "a", "finish_reason": "stop", "text": "Paris."},
              {"side": "b", "finish_reason": "stop", "text": ""}, {"done": True, "battle": "b1"}]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    page.route("**/api/arena/battles", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body))
    page.click("#tab-arena")
    page.fill("#arena-prompt", "What is the capital of France?")
    page.click("#arena-send")
    page.wait_for_selector("#arena[data-state='voting']", timeout=30_000)
    assert page.locator("#side-a .content").inner_text() == "Paris."
    assert page.locator("#side-b .content").inner_text() == "(no answer: the model returned nothing)"
    assert page.locator("#side-b .content.empty").count() == 1 and page.locator("#side-a .content.empty").count() == 0
    assert page.errors == []
