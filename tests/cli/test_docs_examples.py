"""Every `vessel …` command line in README.md, the chart's README and docs/*.md parses
with the real parser (see `tests.cli.doc_examples` for what counts as one and how
synopses are read)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import shlex
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cli.doc_examples import (
    DOCS,
    PLACEHOLDER,
    ROOT,
    Example,
    command_line,
    examples,
    expand,
    strip_comment,
)
from vessel_cli.main import build_parser

# ---- parsing ----


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


def _placeholders_pass(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    @functools.wraps(parse)
    def typed(value: str) -> Any:
        return value if PLACEHOLDER.fullmatch(value) else parse(value)

    return typed


def doc_parser() -> argparse.ArgumentParser:
    """The real parser, with placeholders accepted wherever a value is typed."""
    parser = build_parser()
    for p in _parsers(parser):
        for action in p._actions:
            if callable(action.type):
                action.type = _placeholders_pass(action.type)
    return parser


def names_acommand_line(parser: argparse.ArgumentParser, words: list[str]) -> bool:
    current = parser
    for word in words:
        choices = next(
            (a.choices for a in current._actions if isinstance(a, argparse._SubParsersAction)),
            None,
        )
        if not choices or word not in choices:
            return False
        current = choices[word]
    return True


def _elided(parser: argparse.ArgumentParser, text: str) -> str | None:
    """Why `vessel <command> … --flag` names a command or flag that does not exist."""
    words, current, path = text.split()[1:], parser, ["vessel"]
    while words and names_acommand_line(current, words[:1]):
        current = next(
            a.choices[words[0]]
            for a in current._actions
            if isinstance(a, argparse._SubParsersAction)
        )
        path.append(words.pop(0))
    flags = [w.split("=")[0] for w in words if w.startswith("-")]
    unknown = [f for f in flags if f not in current._option_string_actions]
    if len(path) == 1 or unknown:
        missing = " ".join(unknown) if unknown else repr(words[0] if words else "")
        return f"`{text}`: {' '.join(path)} has no {missing}"
    return None


def problem(parser: argparse.ArgumentParser, example: Example) -> str | None:
    """Why the example does not parse (argparse's words), or None when it does."""
    if example.inline and "…" in example.text:
        return _elided(parser, example.text)
    try:
        variants = expand(example.text)
    except (ValueError, AssertionError) as exc:
        return f"cannot read {example.text!r}: {exc}"
    if example.inline and all(names_acommand_line(parser, argv) for argv in variants):
        return None
    for argv in variants:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parser.parse_args(argv)
        except SystemExit:
            said = err.getvalue().strip().splitlines()
            return f"`vessel {shlex.join(argv)}`: {said[-1] if said else 'exits'}"
    return None


def problems(found: list[Example]) -> list[str]:
    parser = doc_parser()
    return [f"{e.where}: {message}" for e in found if (message := problem(parser, e)) is not None]


def all_examples() -> list[Example]:
    return [e for path in DOCS for e in examples(path.read_text(), str(path.relative_to(ROOT)))]


# ---- tests ----


def test_every_vessel_example_in_the_docs_parses() -> None:
    found = all_examples()
    assert len(found) > 60, [e.where for e in found]  # the extraction still finds them
    broken = problems(found)
    assert not broken, "examples the CLI does not accept:\n" + "\n".join(broken)


def test_a_broken_example_is_reported_with_its_place_and_argparse_reason() -> None:
    text = "\n".join(
        [
            "Run `vessel app list --cluster a` or `vessel bakup list`.",
            "Trust it (`vessel restore … --trust-unsealed`, not `vessel restore … --trust-me`).",
            "```sh",
            "vessel backup list --bucket default --limit K   # K: a placeholder",
            "vessel backup create cluster-a.shop.shop \\",
            "    --buckett default",
            "vessel schedule create APP --bucket B (--daily [--at HH:MM] | --cron '0 * * * *')",
            "vessel schedule create APP --bucket B --daily --at 2pm",
            "vessel restore BACKUP --bucket B --to-cluster C [--existing skip|update|merge]",
            "vessel cluster list [--state S] | get ID | remove",
            "```",
        ]
    )
    reported = problems(list(examples(text, "T.md")))
    assert reported[0].startswith("T.md:1: `vessel bakup list`: ")
    assert "invalid choice: 'bakup'" in reported[0]
    assert reported[1] == "T.md:2: `vessel restore … --trust-me`: vessel restore has no --trust-me"
    assert reported[2].startswith("T.md:5: ") and "--buckett" in reported[2]
    assert reported[3].startswith("T.md:8: ") and "'2pm' is not HH:MM" in reported[3]
    assert reported[4].startswith("T.md:9: ") and "invalid choice: 'merge'" in reported[4]
    assert reported[5].startswith("T.md:10: `vessel cluster remove`: ")
    assert "required: id" in reported[5] and len(reported) == 6


def test_synopses_expand_to_each_alternative_and_both_optional_forms() -> None:
    assert expand("vessel bucket list | get NAME") == [
        ["bucket", "list"],
        ["bucket", "get", "NAME"],
    ]
    assert expand("vessel completion bash|zsh") == [["completion", "bash"], ["completion", "zsh"]]
    assert expand("vessel hook list [APP] [--limit K]") == [
        ["hook", "list"],
        ["hook", "list", "APP", "--limit", "K"],
    ]
    forms = expand("vessel x (--a|--b [--at HH:MM] | --cron '*/15 * * * *')")
    assert ["x", "--cron", "*/15 * * * *"] in forms and ["x", "--b", "--at", "HH:MM"] in forms
    assert ["x", "--a"] in forms


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("vessel app list   # all of them", "vessel app list"),
        ("$ vessel app list", "vessel app list"),
        ("TRACEPARENT=00-ab-cd-01 vessel app list", "vessel app list"),
        ("vessel servers: nats, s3", None),
        ("vessel-embedded --keep", None),
        ("vessel CLI ──▶ gateway", None),
    ],
)
def test_what_counts_as_a_command_line(line: str, command: str | None) -> None:
    assert command_line(strip_comment(line)) == command
