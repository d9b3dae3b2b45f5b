"""Helpers for the server tests: an app on the shipped fakes, and a real uvicorn in a thread."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "genstack" / "data" / "sample"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class serve_process:
    """``genstack serve ARGS`` as a real process with ``home`` as its genstack home (the sample corpus
    ingested as ``docs`` first unless ``ingest=False``); the context value is the base URL."""

    def __init__(self, home: Path, *args: str, ingest: bool = True, start_timeout: float = 60):
        self.home, self.args, self.ingest, self.start_timeout = Path(home), args, ingest, start_timeout

    def __enter__(self) -> str:
        import os
        import subprocess
        import sys
        import urllib.request

        env = {**os.environ, "GENSTACK_HOME": str(self.home), "HF_HUB_OFFLINE": "1"}
        if self.ingest:
            subprocess.run([sys.executable, "-m", "genstack", "ingest", str(SAMPLE), "--collection", "docs"],
                           env=env, check=True, capture_output=True)
        port = free_port()
        self.log = open(self.home / "serve.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "genstack", "serve", "--port", str(port), *self.args],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + self.start_timeout
        while True:
            try:
                urllib.request.urlopen(url + "/api/config", timeout=2).read()
                return url
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.proc.kill()
                    raise RuntimeError("genstack serve did not start:\n" + (self.home / "serve.log").read_text()[-2000:])
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        import signal
        import subprocess

        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def grounded_reply(request) -> str:
    """A scripted 'model' that answers with the first sentence of source [1] and cites it."""
    text = request.messages[-1].content if request.messages else request.prompt
    m = re.search(r"(?m)^\[1\]\s*(.+?[.!?])(\s|$)", text)
    return f"{' '.join(m.group(1).split())} [1]" if m else "I don't know."


class StubDetector:
    """Flags any message containing ``trigger`` (the real detector needs MiniLM; unit tests use fakes)."""

    def __init__(self, trigger="ignore all previous instructions"):
        self.trigger = trigger

    def detect(self, text):
        from genstack.guard import Detection

        hit = self.trigger in text.lower()
        return Detection(hit, 1.0 if hit else 0.0, ["stub"] if hit else [])


def make_app(tmp_path, *, replies=None, responder=None, delay=0.0, guard=None, **config):
    from genstack import load_settings
    from genstack.embeddings.fake import FakeEmbedder
    from genstack.models.fake import FakeChatModel
    from genstack.server import ServerConfig, create_app

    settings = load_settings(data_dir=tmp_path / "home", default_model="fake", default_embedder="fake")
    model = FakeChatModel(replies or ["Hello there friend."], responder=responder, delay=delay)
    config.setdefault("access_log", False)
    config.setdefault("models", ("fake",))
    cfg = ServerConfig(**config)
    if guard is None:  # the configured policy, with a stub detector in place of the MiniLM one
        guard = cfg.guard_policy(settings)
        guard.detector = StubDetector()
    app = create_app(settings, cfg, models={"fake": model}, embedders={"fake": FakeEmbedder()}, guard=guard)
    return app, model, settings


def ingest_sample(settings, collection="docs"):
    from genstack.embeddings.fake import FakeEmbedder
    from genstack.ingestion import ingest

    return ingest([SAMPLE], collection, settings=settings, embedder=FakeEmbedder())


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port, in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
