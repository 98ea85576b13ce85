"""`vessel completion bash|zsh`: a shell completion script made from the CLI's own parser,
so it always offers the verbs and flags that exist (zsh runs the bash script through
bashcompinit)."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import Any

BASH = """\
# vessel shell completion; load with: source <(vessel completion bash)
_vessel_words() {
  case "$1" in
%(cases)s
  esac
}
_vessel() {
  local cur="${COMP_WORDS[COMP_CWORD]}" path="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case " $(_vessel_words "$path") " in
      *" $w "*) path="${path:+$path }$w" ;;
    esac
  done
  COMPREPLY=($(compgen -W "$(_vessel_words "$path")" -- "$cur"))
}
complete -F _vessel vessel
"""
ZSH_PREFIX = "autoload -U +X bashcompinit && bashcompinit\n"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public walk of its tree
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    ]


def words(parser: argparse.ArgumentParser, path: str = "") -> dict[str, list[str]]:
    """Each command path ("" for the top) → the verbs and flags that may follow it."""
    children = _subparsers(parser)
    found = {path: [*children, *_options(parser)]}
    for name, child in children.items():
        found.update(words(child, f"{path} {name}".strip()))
    return found


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    cases = "\n".join(
        f"    {shlex.quote(path)}) echo {shlex.quote(' '.join(options))} ;;"
        for path, options in words(parser).items()
    )
    text = BASH % {"cases": cases}
    return ZSH_PREFIX + text if shell == "zsh" else text


def add_parser(resources: Any, root: Callable[[], argparse.ArgumentParser]) -> None:
    p = resources.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=["bash", "zsh"])

    def run(args: argparse.Namespace) -> int:
        print(script(root(), args.shell), end="")
        return 0

    p.set_defaults(direct=run)
