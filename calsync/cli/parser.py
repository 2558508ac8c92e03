"""The ``calsync`` command's argument parser: the top-level options, and each group of
subcommands (`serving`, `background`, `operating`) adding its own. Every subcommand's
parser sets ``run``, the function `calsync.cli.main` calls with the parsed arguments."""

from __future__ import annotations

import argparse

from calsync import __version__
from calsync.cli import background, operating, serving


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command; builds nothing else and reads no setting."""
    parser = argparse.ArgumentParser(
        prog="calsync",
        description="The ``calsync`` command: run, migrate and operate calsync "
        "(docs/operations.md).",
        epilog="Settings come from CALSYNC_* environment variables (docs/operations.md).",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"calsync {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    serving.add_commands(commands)
    background.add_commands(commands)
    operating.add_commands(commands)
    return parser


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default in (None, argparse.SUPPRESS, False):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Subcommand parsers that show defaults in ``--help``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
