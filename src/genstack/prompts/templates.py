"""Prompt templates as data: TOML files, rendered to chat messages.

A template file holds tables named ``<kind>.<variant>``::

    [ask.few_shot]
    description = "Answer from numbered sources, with two worked examples"
    system = "You answer questions using only the sources. Today is {today}."
    user = "Sources:\\n{context}\\n\\nQuestion: {question}"

    [[ask.few_shot.examples]]
    user = "Sources:\\n[1] The museum opens at 9.\\n\\nQuestion: When does it open?"
    assistant = "It opens at 9 [1]."

``system`` and ``user`` are rendered with ``{name}`` fields (``{{`` and ``}}``
for literal braces); examples become user/assistant turns before the final
user turn, which is how one- and few-shot prompting is done with chat models.
A template with ``format = "completion"`` is for base models instead: it is rendered as one
plain text (:meth:`PromptTemplate.render_text`), each example's ``user`` directly followed by
its ``assistant``, as in the few-shot prompts of the GPT-3 paper.
Only plain names are allowed in fields (no ``{x.attr}`` or ``{x[0]}``), and
values are inserted once, never re-parsed, so text from documents or users
cannot inject template fields.

Variables every template may use: ``{today}`` (ISO date), ``{user}`` (the
login name) and ``{collection}``; each kind adds its own (``{question}``,
``{context}``, ``{text}``, …).

Built-in templates ship in ``genstack/prompts/data/*.toml``. Files in
``<data_dir>/prompts/*.toml`` are loaded after them, and a file given with
``--template FILE.toml`` last; a later table with the same name replaces an
earlier one, so any built-in can be overridden.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import string
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._files import read_user_text
from ..errors import ConfigError, InvalidParameter
from ..generation import Message

__all__ = ["PromptTemplate", "TemplateLibrary", "load_templates", "context_variables"]

_FORMATTER = string.Formatter()


def _fields(text: str, where: str) -> set[str]:
    names = set()
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise ConfigError(f"{where}: bad braces in template ({exc}); write {{{{ and }}}} for literal braces") from None
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise ConfigError(f"{where}: template field {{{name}}} must be a plain name")
        if spec or conv:
            raise ConfigError(f"{where}: template field {{{name}}} may not have a format spec or conversion")
        names.add(name)
    return names


def _render(text: str, values: Mapping[str, Any]) -> str:
    out = []
    for literal, name, _, _ in _FORMATTER.parse(text):
        out.append(literal)
        if name is not None:
            out.append(str(values[name]))
    return "".join(out)


def context_variables(collection: str | None = None, **extra: Any) -> dict[str, Any]:
    """The variables every template may use: today, user, collection."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "user"
    return {"today": _dt.date.today().isoformat(), "user": user, "collection": collection or ""} | extra


@dataclass(frozen=True)
class PromptTemplate:
    name: str  # "<kind>.<variant>"
    user: str
    system: str = ""
    description: str = ""
    examples: tuple[tuple[str, str], ...] = ()
    origin: str = "built-in"
    #: extra settings the caller may read (e.g. an answer budget)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def variables(self) -> set[str]:
        where = f"template {self.name} ({self.origin})"
        names = _fields(self.system, where) | _fields(self.user, where)
        for u, a in self.examples:
            names |= _fields(u, where) | _fields(a, where)
        return names

    def render(self, **values: Any) -> list[Message]:
        """The chat messages for these values (plus today/user/collection)."""
        values = context_variables(values.pop("collection", None)) | values
        missing = sorted(self.variables - values.keys())
        if missing:
            raise InvalidParameter(f"template {self.name} needs a value for: {', '.join(missing)}")
        msgs = []
        if self.system:
            msgs.append(Message("system", _render(self.system, values)))
        for u, a in self.examples:
            msgs.append(Message("user", _render(u, values)))
            msgs.append(Message("assistant", _render(a, values)))
        msgs.append(Message("user", _render(self.user, values)))
        return msgs

    def render_text(self, **values: Any) -> str:
        """One plain-text prompt for a completion (base) model: the system text, each example's
        ``user`` followed directly by its ``assistant``, and the final ``user``, blank lines between."""
        msgs = self.render(**values)
        parts = [m.content for m in msgs if m.role == "system"]
        turns = [m for m in msgs if m.role != "system"]
        for u, a in zip(turns[:-1:2], turns[1:-1:2]):
            parts.append(u.content + a.content)
        parts.append(turns[-1].content)
        return "\n\n".join(parts)


def _parse(data: dict, origin: str) -> dict[str, PromptTemplate]:
    out = {}
    for kind, variants in data.items():
        if not isinstance(variants, dict):
            raise ConfigError(f"{origin}: [{kind}] must be a table of variants like [{kind}.zero_shot]")
        for variant, body in variants.items():
            name = f"{kind}.{variant}"
            if not isinstance(body, dict) or not isinstance(body.get("user"), str):
                raise ConfigError(f"{origin}: template {name} needs a 'user' string")
            examples = []
            for ex in body.get("examples", []):
                if not (isinstance(ex, dict) and isinstance(ex.get("user"), str) and isinstance(ex.get("assistant"), str)):
                    raise ConfigError(f"{origin}: every example of {name} needs 'user' and 'assistant' strings")
                examples.append((ex["user"], ex["assistant"]))
            known = {"user", "system", "description", "examples"}
            t = PromptTemplate(
                name=name, user=body["user"], system=str(body.get("system", "")),
                description=str(body.get("description", "")), examples=tuple(examples), origin=origin,
                options={k: v for k, v in body.items() if k not in known},
            )
            t.variables  # noqa: B018 - validates the fields now, with the file named
            out[name] = t
    return out


def _load_file(path: Path) -> dict[str, PromptTemplate]:
    text = read_user_text(path, "template file", ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return _parse(data, str(path))


class TemplateLibrary:
    """All templates by name, built-in first, then user files (later wins)."""

    def __init__(self, templates: Mapping[str, PromptTemplate]):
        self._t = dict(templates)

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n in self._t if kind is None or n.split(".", 1)[0] == kind)

    def get(self, name: str, kind: str | None = None) -> PromptTemplate:
        """A template by full name (``ask.few_shot``) or by variant within ``kind`` (``few_shot``)."""
        full = name if "." in name or kind is None else f"{kind}.{name}"
        if full not in self._t:
            options = ", ".join(self.names(kind)) or "none"
            raise InvalidParameter(f"unknown template {name!r}; available: {options}")
        t = self._t[full]
        if kind and t.kind != kind:
            raise InvalidParameter(f"template {full} is for '{t.kind}', not '{kind}'")
        return t

    def __contains__(self, name: str) -> bool:
        return name in self._t

    def __iter__(self):
        return iter(self._t.values())


def load_templates(extra_files: Iterable[str | Path] = (), data_dir: str | Path | None = None) -> TemplateLibrary:
    templates: dict[str, PromptTemplate] = {}
    pkg = resources.files("genstack.prompts") / "data"
    for entry in sorted(pkg.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            templates.update(_parse(tomllib.loads(entry.read_text(encoding="utf-8")), f"built-in {entry.name}"))
    if data_dir is not None:
        user_dir = Path(data_dir) / "prompts"
        if user_dir.is_dir():
            for p in sorted(user_dir.glob("*.toml")):
                templates.update(_load_file(p))
    for f in extra_files:
        templates.update(_load_file(Path(f)))
    return TemplateLibrary(templates)


def resolve_template(spec: str | None, kind: str, default: str, *, data_dir=None) -> PromptTemplate:
    """``spec`` is a variant (``few_shot``), a full name, a ``FILE.toml`` or ``FILE.toml:name``."""
    spec = spec or default
    files: list[str] = []
    name = spec
    if ".toml" in spec:
        path, _, name = spec.partition(".toml")
        files = [path + ".toml"]
        name = name.lstrip(":")
        if not name:
            only = [n for n in _load_file(Path(files[0])) if n.startswith(kind + ".")]
            if len(only) != 1:
                raise InvalidParameter(f"{files[0]} holds {len(only)} '{kind}' templates; pick one with {files[0]}:NAME")
            name = only[0]
    return load_templates(files, data_dir).get(name, kind)
