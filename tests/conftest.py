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
    from tests._server import serve_process

    home = tmp_path_factory.mktemp("serve-home")
    with serve_process(home, "--rate-limit", "0") as url:
        yield ServerURL(url, home)


class ServerURL(str):
    """The base URL of a live server, with its genstack home as ``.home``."""

    def __new__(cls, url, home):
        obj = super().__new__(cls, url)
        obj.home = home
        return obj
