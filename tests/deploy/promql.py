"""What a PromQL expression names: metric selectors, their label matchers, grouping labels.

promtool is the parser of record (tests/deploy/test_monitoring_files.py has it parse every
expression first); this walk over PromQL's tokens only reads off the names of expressions it
has accepted, so that each can be checked against what the service exports. Tokens, not
patterns over the whole text: a label name inside a string, a range `[5m]` or an
aggregation's `by (...)` list is never taken for a metric.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|s|m|h|d|w|y))+)(?![\w.])
  | (?P<number>0x[0-9a-fA-F]+|\d*\.?\d+(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<matcher>=~|!~|!=|==|<=|>=|=)
  | (?P<punct>[(){}\[\],@])
  | (?P<op>[-+*/%^<>])
    """,
    re.VERBOSE,
)
# Keywords that take a label list in parentheses.
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# Keywords that are neither a metric nor a call.
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Selector:
    """`name{label op "value", ...}`; name is empty for a selector of matchers only."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]


@dataclass(slots=True)
class Names:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)
    # Metrics aggregated by sum() directly, e.g. `sum(sync_mailboxes)`.
    summed: list[str] = field(default_factory=list)


def tokens(expr: str) -> list[Token]:
    out: list[Token] = []
    at = 0
    while at < len(expr):
        match = _TOKEN.match(expr, at)
        if match is None:
            raise ValueError(f"cannot read PromQL at {expr[at:]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, match.group()))
        at = match.end()
    return out


def names(expr: str) -> Names:
    found = Names()
    toks = tokens(expr)
    i = 0
    while i < len(toks):
        i = _step(toks, i, found)
    return found


def _step(toks: list[Token], i: int, found: Names) -> int:
    tok = toks[i]
    following = toks[i + 1].text if i + 1 < len(toks) else ""
    if tok.text == "[":  # a range or subquery: durations only
        return _after(toks, i, "]")
    if tok.text == "@":  # `@ start()` / `@ 1700000000`
        return i + 2
    if tok.text == "{":  # a selector of matchers only
        return _selector(toks, i, "", found)
    if tok.kind != "ident":
        return i + 1
    word = tok.text.lower()
    if word in _LABEL_LISTS and following == "(":
        end = _after(toks, i + 1, ")")
        found.grouping.update(t.text for t in toks[i + 2 : end - 1] if t.kind == "ident")
        return end
    if word in _KEYWORDS:
        return i + 1
    if following == "(" or following.lower() in ("by", "without"):  # a call or aggregation
        if word == "sum":
            _note_summed(toks, i + 1, found)
        return i + 1
    return _selector(toks, i + 1, tok.text, found) if following == "{" else _bare(tok, i, found)


def _bare(tok: Token, i: int, found: Names) -> int:
    found.selectors.append(Selector(tok.text, ()))
    return i + 1


def _selector(toks: list[Token], brace: int, name: str, found: Names) -> int:
    end = _after(toks, brace, "}")
    inner = [t for t in toks[brace + 1 : end - 1] if t.text != ","]
    if len(inner) % 3:
        raise ValueError(f"unexpected matchers: {' '.join(t.text for t in inner)}")
    matchers = tuple(
        (inner[j].text, inner[j + 1].text, _unquote(inner[j + 2].text))
        for j in range(0, len(inner), 3)
    )
    found.selectors.append(Selector(name, matchers))
    return end


def _note_summed(toks: list[Token], paren: int, found: Names) -> None:
    """The metric of `sum(metric...)` / `sum by (l) (metric...)`, if its argument is one."""
    at = paren
    if toks[at].text.lower() in _LABEL_LISTS:
        at = _after(toks, at + 1, ")")
    if at + 1 < len(toks) and toks[at].text == "(" and toks[at + 1].kind == "ident":
        after = toks[at + 2].text if at + 2 < len(toks) else ""
        if after != "(" and after.lower() not in ("by", "without"):
            found.summed.append(toks[at + 1].text)


def _after(toks: list[Token], start: int, closing: str) -> int:
    """Index past the bracket that closes the one at `start`."""
    opening = toks[start].text
    depth = 0
    for j in range(start, len(toks)):
        if toks[j].text == opening:
            depth += 1
        elif toks[j].text == closing:
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError(f"unclosed {opening!r}")


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)
