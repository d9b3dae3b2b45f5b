import os
import tempfile

import pytest

TIERS = {"unit", "integration", "slow"}


def pytest_configure(config):
    # Tests never touch the user's genstack home.
    os.environ["GENSTACK_HOME"] = tempfile.mkdtemp(prefix="genstack-test-home-")
    os.environ.pop("GENSTACK_CONFIG", None)


def pytest_collection_modifyitems(config, items):
    missing = [item.nodeid for item in items if not TIERS & {m.name for m in item.iter_markers()}]
    if missing:
        raise pytest.UsageError("tests without a tier marker (unit/integration/slow): " + ", ".join(missing[:5]))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, empty genstack home for one test."""
    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_model():
    from genstack.models.fake import FakeChatModel

    return FakeChatModel(["The answer is 42."])


@pytest.fixture(scope="session")
def smol():
    """The real bundled SmolLM2 model, loaded once for the session."""
    from genstack import get_model

    model = get_model("smollm2-135m-instruct", n_ctx=2048)
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """`genstack serve` as a real process on the bundled models, with the sample corpus
    ingested as collection ``docs``. Yields the base URL; stopped with SIGTERM at the end."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests._server import SAMPLE, free_port

    home = tmp_path_factory.mktemp("serve-home")
    env = {**os.environ, "GENSTACK_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "genstack", "ingest", str(SAMPLE), "--collection", "docs"],
                   env=env, check=True, capture_output=True)
    port = free_port()
    log = open(home / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "genstack", "serve", "--port", str(port), "--rate-limit", "0"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/api/config", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("genstack serve did not start:\n" + (home / "serve.log").read_text()[-2000:])
            time.sleep(0.2)
    try:
        yield ServerURL(url, home)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class ServerURL(str):
    """The base URL of a live server, with its genstack home as ``.home``."""

    def __new__(cls, url, home):
        obj = super().__new__(cls, url)
        obj.home = home
        return obj
