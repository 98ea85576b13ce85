"""The `vessel …` command lines of Markdown documents, and the argument lists a synopsis
among them stands for.

What counts as a command line: in a fenced block, a line starting with `vessel ` (after
`$ ` or `VAR=value` words), with its `\\` continuations and, for synopses, its more
indented continuation lines; outside fences, an inline `vessel …` code span. A command
line's second word must look like a resource or a flag (so quoted output such as
`vessel servers: …` is not one). Trailing `# comments` are dropped.

Synopses are expanded: `[optional]` parts both left out and all put in, `a|b` and
`(x | y)` alternatives each at least once, and `list … | get ID` as separate commands
under the same resource. Upper-case placeholders (`ID`, `N`, `HH:MM`) stand for any value,
so they pass typed flags unchecked; concrete values are checked like any user's. An inline
span may also just name a command (`vessel backup create`), or elide its arguments with
`…` (`vessel restore … --trust-unsealed`): then the command and each flag it names must
exist.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    ROOT / "charts" / "vessel" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(?::[A-Z0-9_]+)*")
COMMAND_WORD = re.compile(r"-{1,2}[a-z][a-z-]*|[a-z][a-z-]*")
INLINE = re.compile(r"`(vessel [^`]+)`")
ENV_WORD = re.compile(r"[A-Z_][A-Z0-9_]*=\S*")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Example:
    where: str
    """file:line"""
    text: str
    inline: bool


def strip_comment(line: str) -> str:
    """`line` without a `#` comment (one at its start or after a blank, outside quotes)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def command_line(logical: str) -> str | None:
    """The `vessel …` part of a shell line, or None when it runs something else."""
    words = logical.strip().removeprefix("$ ").split(" ")
    while words and ENV_WORD.fullmatch(words[0]):
        words = words[1:]
    while words and words[0] == "":
        words = words[1:]
    text = " ".join(words).strip()
    if not text.startswith("vessel "):
        return None
    second = text.split()[1]
    return text if COMMAND_WORD.fullmatch(second) else None


def _fenced(lines: list[str], start: int, name: str) -> Iterator[Example]:
    i = start
    while i < len(lines) and not FENCE.match(lines[i]):
        first = i
        indent = len(lines[i]) - len(lines[i].lstrip())
        logical = strip_comment(lines[i])
        while logical.endswith("\\") and i + 1 < len(lines):
            i += 1
            logical = logical[:-1].rstrip() + " " + strip_comment(lines[i]).strip()
        i += 1
        command = command_line(logical)
        if command is None:
            continue
        while i < len(lines) and not FENCE.match(lines[i]):
            line = lines[i]
            deeper = len(line) - len(line.lstrip()) > indent and line.strip()
            if not deeper:
                break
            if not line.strip().startswith("#"):  # a synopsis goes on, more indented
                command += " " + strip_comment(line).strip()
            i += 1
        yield Example(f"{name}:{first + 1}", command, inline=False)


def examples(text: str, name: str) -> Iterator[Example]:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            found = list(_fenced(lines, i + 1, name))
            yield from found
            i += 1
            while i < len(lines) and not FENCE.match(lines[i]):
                i += 1
            i += 1
            continue
        for match in INLINE.finditer(lines[i]):
            command = command_line(match[1])
            if command is not None:
                yield Example(f"{name}:{i + 1}", command, inline=True)
        i += 1


# ---- synopses ----

Node = tuple[str, Any]


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars="[]()")
    lexer.whitespace_split = True
    # A run of brackets comes back as one token: one bracket each.
    return [t for token in lexer for t in ([*token] if set(token) <= set("[]()") else [token])]


def _alternatives(tokens: list[str], i: int, closer: str | None) -> tuple[Node, int]:
    options: list[list[Node]] = [[]]
    while i < len(tokens):
        token = tokens[i]
        if token == closer:
            return ("alt", options), i + 1
        if token == "|":
            options.append([])
            i += 1
        elif token in "[(" and len(token) == 1:
            inner, i = _alternatives(tokens, i + 1, "]" if token == "[" else ")")
            options[-1].append(("opt" if token == "[" else "group", inner))
        else:
            options[-1].append(("word", token.split("|") if len(token) > 1 else [token]))
            i += 1
    assert closer is None, f"unclosed {closer!r}"
    return ("alt", options), i


def _variants(node: Node, optional: bool) -> list[list[str]]:
    """Word lists that use every alternative of `node` at least once; `[optional]` parts
    all in (`optional`) or all out."""
    kind, value = node
    if kind == "word":
        return [[word] for word in value]
    if kind == "opt":
        return _variants(value, optional) if optional else [[]]
    if kind == "group":
        return _variants(value, optional)
    found: list[list[str]] = []
    for seq in value:  # each alternative; its parts' variants side by side, cycled
        parts = [_variants(n, optional) for n in seq]
        width = max((len(p) for p in parts), default=1)
        found += [[w for p in parts for w in p[j % len(p)]] for j in range(width)]
    return found


def expand(text: str) -> list[list[str]]:
    """The argument lists a command line or synopsis stands for (without `vessel`)."""
    (_, commands), _ = _alternatives(_tokens(text), 0, None)
    found: list[list[str]] = []
    prefix: list[str] = []
    for n, seq in enumerate(commands):
        for optional in (False, True):
            for words in _variants(("alt", [seq]), optional):
                if n == 0:
                    prefix = words[:2]  # `vessel <resource>`, shared by `| get ID`
                argv = (words if n == 0 else prefix + words)[1:]
                if argv not in found:
                    found.append(argv)
    return found
