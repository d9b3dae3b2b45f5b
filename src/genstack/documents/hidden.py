"""Text a browser would not show (OWASP LLM04: data poisoning through hidden text).

An HTML page can carry instructions a reader never sees: ``display:none``,
``visibility:hidden``, a zero or one-pixel font, zero opacity, text the same
colour as its background, text pushed off screen. :func:`hidden_nodes` finds
such elements in a selectolax tree, from inline styles and from simple class
and id rules in ``<style>`` blocks; the HTML loader drops them and flags the
document (``metadata["flags"]`` holds ``"hidden-text"``).
"""

from __future__ import annotations

import re

__all__ = ["hidden_reason", "hidden_nodes"]

_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_NAMED = {"white": "#ffffff", "black": "#000000", "transparent": "transparent"}


def _decls(style: str) -> dict[str, str]:
    out = {}
    for part in style.split(";"):
        if ":" in part:
            k, v = part.split(":", 1)
            out[k.strip().lower()] = v.strip().lower().replace("!important", "").strip()
    return out


def _colour(v: str | None) -> str | None:
    """A CSS colour as ``#rrggbb`` (or "transparent"); for a shorthand like ``#fff url(x)`` its colour."""
    if not v or not v.strip():
        return None
    m = re.match(r"\s*rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*([\d.]+)\s*)?\)", v)
    if m:
        if m.group(4) is not None and float(m.group(4)) == 0:
            return "transparent"
        return "#%02x%02x%02x" % tuple(int(m.group(i)) for i in (1, 2, 3))
    v = v.split()[0]
    v = _NAMED.get(v, v)
    m = re.fullmatch(r"#([0-9a-f]{3})", v)
    return "#" + "".join(c * 2 for c in m.group(1)) if m else v


def _size_zero(v: str) -> bool:
    m = re.match(r"([\d.]+)\s*(px|pt|em|rem|%)?$", v)
    if not m:
        return False
    n, unit = float(m.group(1)), m.group(2) or "px"
    return n == 0 or (unit in ("px", "pt") and n <= 1) or (unit in ("em", "rem") and n <= 0.1) or (unit == "%" and n <= 10)


def hidden_reason(decls: dict[str, str], background: str | None = None) -> str | None:
    """Why an element with these CSS declarations is invisible, or None."""
    if decls.get("display") == "none":
        return "display:none"
    if decls.get("visibility") in ("hidden", "collapse"):
        return "visibility:hidden"
    if "font-size" in decls and _size_zero(decls["font-size"]):
        return "font-size:" + decls["font-size"]
    if decls.get("opacity") and re.fullmatch(r"0*\.?0*", decls["opacity"]):
        return "opacity:0"
    colour = _colour(decls.get("color"))
    if colour == "transparent":
        return "color:transparent"
    bg = _colour(decls.get("background-color") or decls.get("background")) or background
    if colour and bg and colour == bg:
        return "color same as background"
    for side in ("left", "top", "text-indent", "margin-left"):
        m = re.match(r"-\s*(\d+)", decls.get(side, ""))
        if m and int(m.group(1)) >= 1000:
            return f"{side} off screen"
    if decls.get("clip") in ("rect(0,0,0,0)", "rect(0 0 0 0)") or decls.get("clip-path") == "inset(100%)":
        return "clipped"
    if ("height" in decls and _size_zero(decls["height"]) or "width" in decls and _size_zero(decls["width"])) \
            and decls.get("overflow") == "hidden":
        return "zero-size box"
    return None


def _style_rules(tree) -> list[tuple[str, dict[str, str]]]:
    rules = []
    for node in tree.css("style"):
        css = re.sub(r"/\*.*?\*/", "", node.text() or "", flags=re.S)
        for sel, body in _RULE.findall(css):
            for s in sel.split(","):
                s = s.strip()
                if re.fullmatch(r"[a-zA-Z0-9]*[.#][\w-]+", s):
                    rules.append((s, _decls(body)))
    return rules


def hidden_nodes(tree) -> list[tuple[object, str]]:
    """``(node, reason)`` for each outermost element of the page that a reader would not see."""
    found: list[tuple[object, str]] = []
    for sel, decls in _style_rules(tree):
        if hidden_reason(decls):
            for node in tree.css(sel):
                found.append((node, hidden_reason(decls)))
    body_bg = None
    body = tree.body
    if body is not None and body.attributes.get("style"):
        d = _decls(body.attributes["style"])
        body_bg = _colour(d.get("background-color") or d.get("background"))
    body_bg = body_bg or "#ffffff"
    for node in tree.css("[style]"):
        decls = _decls(node.attributes.get("style") or "")
        bg = None
        parent = node.parent
        while parent is not None and bg is None:
            pd = _decls(parent.attributes.get("style") or "") if parent.attributes else {}
            bg = _colour(pd.get("background-color") or pd.get("background"))
            parent = parent.parent
        reason = hidden_reason(decls, bg or body_bg)
        if reason:
            found.append((node, reason))
    for node in tree.css("font[size='0'], font[color]"):
        c = _colour(node.attributes.get("color"))
        if node.attributes.get("size") == "0" or (c and c == body_bg):
            found.append((node, "font tag hidden"))
    ids = {n.mem_id for n, _ in found}
    outer, seen = [], set()
    for node, reason in found:  # outermost only, each once: removing a node removes its children
        p, nested = node.parent, False
        while p is not None:
            if p.mem_id in ids:
                nested = True
                break
            p = p.parent
        if not nested and node.mem_id not in seen:
            seen.add(node.mem_id)
            outer.append((node, reason))
    return outer
