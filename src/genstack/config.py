"""One Settings object: defaults, then a TOML file, then GENSTACK_* variables.

Precedence, lowest first:

1. the defaults below;
2. ``config.toml`` in the genstack home (``$GENSTACK_HOME``, else
   ``$XDG_DATA_HOME/genstack``, else ``~/.local/share/genstack``), or the file
   named by ``$GENSTACK_CONFIG``;
3. environment variables ``GENSTACK_<FIELD>`` (for example ``GENSTACK_N_CTX=4096``);
4. arguments passed explicitly in code or on the command line.

Nothing is global: :func:`load_settings` builds a fresh object each call, and
every API takes an optional ``settings=`` argument.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .choices import REDACT_MODES
from .errors import ConfigError

__all__ = ["Settings", "load_settings", "genstack_home", "available_cores"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def genstack_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("GENSTACK_HOME"):
        return Path(env["GENSTACK_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "genstack"


@dataclass(frozen=True)
class Settings:
    """Every knob genstack reads, with its default."""

    #: where collections, sessions, logs and caches live
    data_dir: Path = field(default_factory=genstack_home)
    #: the generator used when none is named
    default_model: str = "smollm2-135m-instruct"
    #: the model ``genstack task translate`` uses when --model is not given ("" means default_model):
    #: the bundled Gemma 3 270M base is multilingual, SmolLM2-135M is not (chrF 59 against 16 on
    #: ``genstack eval task translate``)
    translate_model: str = "gemma3-270m"
    #: the embedder used when none is named
    default_embedder: str = "minilm-l6-v2"
    #: arithmetic of the default sentence-transformers embedder: "auto" is bf16 where the CPU has
    #: bf16 instructions (AVX512-BF16 or AMX: 2x faster at cosine 0.99998 to fp32, SciFact nDCG@10
    #: within 0.005) and fp32 elsewhere; "fp32" or "bf16" force one. A collection records the
    #: arithmetic it was built with ("minilm-l6-v2@bf16") and keeps using it.
    embed_precision: str = "auto"
    #: context window to allocate; 0 means the model's trained length, capped at max_ctx
    n_ctx: int = 0
    #: cap on the automatic context window (the KV cache grows with it)
    max_ctx: int = 8192
    #: threads for decoding and for prompt processing; 0 means all cores
    n_threads: int = 0
    n_threads_batch: int = 0
    #: llama.cpp logical and physical batch sizes for prompt processing
    n_batch: int = 512
    n_ubatch: int = 512
    #: llama.cpp flash attention
    flash_attn: bool = True
    #: verify model files against the registry's sha256 on first load
    verify_models: bool = True
    #: "auto" re-encodes GGUF weights whose type has no fast CPU kernels (Q4_1, Q5_0,
    #: Q5_1) to Q8_0, near-lossless and much faster at prompt processing; "original"
    #: loads files as shipped; "q8_0" / "f16" always re-encode. Made once, cached.
    weights: str = "auto"
    #: the store backend new collections are created in (a name in the genstack.stores entry points:
    #: "sqlite", "lancedb" with the [lancedb] extra, or a plugin's)
    store: str = "sqlite"
    #: where LanceDB collections keep their data: "" for the collection's own folder, or a folder or
    #: object-store URI (s3://bucket/prefix, gs://…, az://…) under which each collection gets a table set
    lancedb_uri: str = ""
    #: the BM25 engine of sqlite collections: "auto" adds a memory-mapped sparse-matrix index (read
    #: out of FTS5; many times faster than it, the same scores) to collections of 20,000 chunks or
    #: more, rebuilt at the end of each ingest; "sparse" adds it to every collection; "fts5" never does.
    #: FTS5 stays the source of truth and answers whenever the sparse index is not current.
    keyword_index: str = "auto"
    #: the dense search of sqlite collections: "exact" scans every vector; "binary" first ranks the
    #: vectors' sign codes by Hamming distance and scores only the nearest ~0.1% (at least 1,000)
    #: exactly (several times faster at a million chunks; recall in benchmarks/RESULTS.md); "auto"
    #: uses "binary" from 200,000 chunks. Scores are exact cosines either way.
    dense_index: str = "auto"
    #: files larger than this are not ingested (reported as failed, with this setting named)
    max_file_bytes: int = 200_000_000
    #: the system prompt ``genstack generate`` and plain ``genstack chat`` give a chat model when
    #: --system is not set ("" sends none); shown by --show-prompt
    system_prompt: str = "You are a helpful assistant. Answer the question directly and briefly."
    #: what you type into ``genstack ask`` and ``genstack chat --collection`` is redacted before the
    #: search and the model see it: "off", "secrets" (keys, tokens, passwords) or "all" (every PII
    #: kind); the same guard ``genstack serve --redact`` runs for its clients (``--redact`` per command)
    redact: str = "off"
    #: models on OpenAI-compatible servers, by the name you give them (config file only)::
    #:
    #:     [models.big]
    #:     base_url = "http://gpu-box:8000/v1"
    #:     model = "meta-llama/Llama-3.1-8B-Instruct"
    #:     api_key_env = "GPU_BOX_KEY"      # optional; the variable holding the key
    #:     timeout = 120                     # optional, seconds
    #:     context_length = 8192             # optional
    #:     kind = "chat"                     # or "embedding"
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: external MCP servers whose tools ``genstack agent --tools mcp:NAME`` may use (config file only)::
    #:
    #:     [mcp_servers.files]
    #:     command = ["npx", "@modelcontextprotocol/server-filesystem", "/srv/docs"]   # over stdio
    #:     [mcp_servers.remote]
    #:     url = "http://tools-box:8765/mcp"                                          # streamable HTTP
    #:     api_key_env = "TOOLS_BOX_KEY"      # optional: the variable holding its bearer key
    mcp_servers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        for name in ("n_ctx", "max_ctx", "n_threads", "n_threads_batch", "n_batch", "n_ubatch", "max_file_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"setting {name} must be a non-negative integer, got {value!r}")
        if self.weights not in ("auto", "original", "q8_0", "f16"):
            raise ConfigError(f"setting weights must be auto, original, q8_0 or f16, got {self.weights!r}")
        if self.keyword_index not in ("auto", "sparse", "fts5"):
            raise ConfigError(f"setting keyword_index must be auto, sparse or fts5, got {self.keyword_index!r}")
        if self.dense_index not in ("auto", "exact", "binary"):
            raise ConfigError(f"setting dense_index must be auto, exact or binary, got {self.dense_index!r}")
        if self.embed_precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"setting embed_precision must be auto, fp32 or bf16, got {self.embed_precision!r}")
        if self.redact not in REDACT_MODES:
            raise ConfigError(f"setting redact must be one of {', '.join(REDACT_MODES)}, got {self.redact!r}")
        if self.n_batch == 0 or self.n_ubatch == 0:
            raise ConfigError("settings n_batch and n_ubatch must be at least 1")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    def threads(self) -> tuple[int, int]:
        """(decode threads, batch threads), resolving 0 to the core count."""
        cores = available_cores()
        return (self.n_threads or cores, self.n_threads_batch or cores)


def _coerce(name: str, raw: Any, typ: Any, origin: str) -> Any:
    typ = {"Path": Path, "str": str, "int": int, "bool": bool}.get(typ, typ) if isinstance(typ, str) else typ
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(raw, str) and raw.strip().lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{origin}: {name} must be true or false, got {raw!r}")
    if typ is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{origin}: {name} must be an integer, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: {name} must be an integer, got {raw!r}") from None
    if typ is Path:
        return Path(str(raw)).expanduser()
    return str(raw)


_MODEL_KEYS = {"base_url": str, "model": str, "api_key_env": str, "timeout": (int, float), "context_length": int,
               "kind": str}


def _remote_models(raw: Any, origin: str) -> dict[str, dict[str, Any]]:
    """``[models.NAME]`` tables, checked: each needs base_url and model; kind is chat or embedding."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: models must be tables, [models.NAME] with base_url and model")
    out = {}
    for name, table in raw.items():
        where = f"{origin}: [models.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table with base_url and model")
        unknown = set(table) - set(_MODEL_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(_MODEL_KEYS)})")
        for key in ("base_url", "model"):
            if not isinstance(table.get(key), str) or not table[key].strip():
                raise ConfigError(f"{where} needs {key} (a string)")
        for key, typ in _MODEL_KEYS.items():
            if key in table and (not isinstance(table[key], typ) or isinstance(table[key], bool)):
                raise ConfigError(f"{where}: {key} has the wrong type ({type(table[key]).__name__})")
        if not table["base_url"].startswith(("http://", "https://")):
            raise ConfigError(f"{where}: base_url must start with http:// or https://")
        if table.get("kind", "chat") not in ("chat", "embedding"):
            raise ConfigError(f"{where}: kind must be chat or embedding, got {table['kind']!r}")
        out[str(name)] = dict(table)
    return out


def _mcp_servers(raw: Any, origin: str) -> dict[str, dict[str, Any]]:
    """``[mcp_servers.NAME]`` tables, checked: each holds a command (a list of strings) or a url."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: mcp_servers must be tables, [mcp_servers.NAME] with command or url")
    out = {}
    for name, table in raw.items():
        where = f"{origin}: [mcp_servers.{name}]"
        if not isinstance(table, dict) or set(table) - {"command", "url", "env", "api_key_env"}:
            raise ConfigError(f"{where} must be a table with command (a list) or url, and optionally env "
                              "(command) or api_key_env (url)")
        if table.get("api_key_env") is not None and (table.get("url") is None or not isinstance(table["api_key_env"], str)):
            raise ConfigError(f"{where}: api_key_env names an environment variable, and goes with url")
        cmd, url = table.get("command"), table.get("url")
        if (cmd is None) == (url is None):
            raise ConfigError(f"{where} needs either command or url")
        if cmd is not None and (not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd)):
            raise ConfigError(f"{where}: command must be a list of strings, e.g. [\"python\", \"server.py\"]")
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            raise ConfigError(f"{where}: url must start with http:// or https://")
        out[str(name)] = dict(table)
    return out


_TABLES = {"models": _remote_models, "mcp_servers": _mcp_servers}


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from defaults, the TOML file, GENSTACK_* env, then overrides."""
    env = dict(os.environ if env is None else env)
    known = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {"data_dir": genstack_home(env)}

    path = Path(config_file or env.get("GENSTACK_CONFIG") or values["data_dir"] / "config.toml").expanduser()
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        for key, raw in data.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
            values[key] = _TABLES[key](raw, str(path)) if key in _TABLES else _coerce(key, raw, known[key], str(path))
    elif config_file is not None:
        raise ConfigError(f"config file not found: {path}")

    for key, typ in known.items():
        if key in _TABLES:  # tables: the config file only
            continue
        var = f"GENSTACK_{key.upper()}"
        if var in env and env[var] != "":
            values[key] = _coerce(key, env[var], typ, var)

    for key, raw in overrides.items():
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
        if raw is not None:
            values[key] = raw
    return Settings(**values)
