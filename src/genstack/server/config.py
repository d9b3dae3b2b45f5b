"""What a server instance is allowed to do: its limits, keys and models.

Every limit has a default that protects a laptop, and every one is a
``genstack serve`` option. The object is plain data so that ``--workers N``
can hand it to each worker process as JSON.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["ServerConfig", "is_loopback"]


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    #: API keys (``Authorization: Bearer <key>``); empty means no authentication,
    #: which is only allowed on a loopback address
    api_keys: tuple[str, ...] = ()
    #: names (``Host``) the server answers to besides localhost, loopback and the bound address;
    #: ``.example.com`` admits subdomains too, ``*`` turns the check off (see genstack.server.boundary)
    allowed_hosts: tuple[str, ...] = ()
    #: origins (``http://host:port``) whose pages may call the API from a browser (CORS); the
    #: server's own pages always may
    allowed_origins: tuple[str, ...] = ()
    #: generator names served besides the default model (registry names or GGUF paths);
    #: empty means the default model and every installed registry generator
    models: tuple[str, ...] = ()
    #: the models the web UI's Arena tab battles (two or more); empty means every generator served
    arena_models: tuple[str, ...] = ()
    #: largest request body, in bytes, for every route but uploads (413 above it)
    max_body_bytes: int = 1_000_000
    #: largest upload request, in bytes (413 above it)
    max_upload_bytes: int = 20_000_000
    #: most prompt tokens a request may send (400 above it); 0 means the model's window
    max_prompt_tokens: int = 4096
    #: most tokens a request may ask for (400 above it); also the default
    max_tokens_cap: int = 1024
    #: requests per minute per API key (or per client address without keys); 0 = off
    rate_limit: int = 120
    #: generations running at once, and requests waiting for a slot (503 beyond)
    max_concurrency: int = 1
    max_queue: int = 32
    #: seconds a request may take, queueing included, before it is cut off (504)
    request_timeout: float = 300.0
    #: keep a request/response log in SQLite (``genstack logs``)
    log_requests: bool = True
    #: write one JSON access-log line per request to stderr
    access_log: bool = True
    #: llama.cpp sequences decoded together in one batch (0 or 1: one request at a time per model);
    #: raises max_concurrency to match
    batch_slots: int = 0
    #: how batch slots share the KV cache: "unified" (fastest) or "split" (greedy output identical to
    #: the unbatched path whatever runs beside it); see genstack.models.batching.KV_MODES
    batch_kv: str = "unified"
    #: the prompt-injection detector on the user's message: off, flag (recorded) or block (400)
    guard_input: str = "flag"
    #: a canary in the system prompt; an answer containing it is withheld
    guard_canary: bool = True
    #: redaction of answers and of user messages: off, secrets (keys, tokens, passwords) or all (every PII kind)
    guard_redact: str = "secrets"
    #: sentences of retrieved chunks that give orders to the model: strip, flag or off
    guard_sources: str = "strip"

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_keys", tuple(k for k in self.api_keys if k))
        object.__setattr__(self, "allowed_hosts", tuple(h.strip() for h in self.allowed_hosts if h.strip()))
        object.__setattr__(self, "allowed_origins", tuple(o.strip().rstrip("/") for o in self.allowed_origins
                                                         if o.strip()))
        for o in self.allowed_origins:
            if o not in ("*", "null") and not re.fullmatch(r"https?://[^/\s]+", o):
                raise ConfigError(f"cors-origin must look like http://host:port (scheme, host and port, no path), got {o!r}")
        for h in self.allowed_hosts:
            if "/" in h or " " in h:
                raise ConfigError(f"allowed-host must be a host name (no scheme or path), got {h!r}")
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "arena_models", tuple(self.arena_models))
        for name in ("port", "max_body_bytes", "max_upload_bytes", "max_prompt_tokens", "max_tokens_cap",
                     "rate_limit", "max_concurrency", "max_queue", "batch_slots"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name.replace('_', '-')} must be a non-negative integer, got {v!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be between 1 and 65535, got {self.port}")
        for name in ("max_body_bytes", "max_upload_bytes", "max_tokens_cap", "max_concurrency"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1")
        from ..models.batching import KV_MODES

        if self.batch_kv not in KV_MODES:
            raise ConfigError(f"batch-kv must be one of {', '.join(KV_MODES)}, got {self.batch_kv!r}")
        if self.batch_slots > self.max_concurrency:
            object.__setattr__(self, "max_concurrency", self.batch_slots)
        from ..guard.policy import INPUT_MODES, SOURCE_MODES
        from ..guard.output import REDACT_MODES

        for name, allowed in (("guard_input", INPUT_MODES), ("guard_redact", REDACT_MODES), ("guard_sources", SOURCE_MODES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not self.request_timeout > 0:
            raise ConfigError(f"request-timeout must be positive, got {self.request_timeout!r}")

    def check_bind(self) -> None:
        """A non-loopback bind needs an API key: refuse to start otherwise."""
        if not is_loopback(self.host) and not self.api_keys:
            raise ConfigError(
                f"refusing to listen on {self.host} without an API key: anyone on the network could use it. "
                "Set GENSTACK_API_KEYS (or --api-key), or bind 127.0.0.1"
            )

    def guard_policy(self, settings=None):
        """The guard of every request; with ``settings``, the home's stored canary, and the configured
        default system prompt counts as public (no canary is added to it)."""
        from ..guard.canary import DEFAULT_SYSTEM, stored_canary
        from ..guard.policy import GuardPolicy

        policy = GuardPolicy(input=self.guard_input, canary=self.guard_canary, redact=self.guard_redact,
                             sources=self.guard_sources)
        if settings is not None:
            policy.public_system = (DEFAULT_SYSTEM, settings.system_prompt)
            if self.guard_canary:
                policy.token = stored_canary(settings.data_dir)
        return policy

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServerConfig":
        data = json.loads(text)
        for name in ("api_keys", "allowed_hosts", "allowed_origins"):
            data[name] = tuple(data.get(name, ()))
        data["models"] = tuple(data.get("models", ()))
        data["arena_models"] = tuple(data.get("arena_models", ()))
        return cls(**data)

    def replace(self, **changes) -> "ServerConfig":
        return dataclasses.replace(self, **changes)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
