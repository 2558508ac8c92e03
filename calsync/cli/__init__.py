"""The ``calsync`` command: run, migrate and operate calsync (docs/operations.md).

Each subcommand reads the settings from the environment once, builds what it needs through
:func:`calsync.bootstrap.bootstrap`, and runs. A failure the operator can fix ends the
command with one line on stderr and a non-zero status, never a traceback: configuration
problems (status 2, naming every faulty setting), an unreachable database or Redis, a
missing key file, and a stored secret that no configured key decrypts (status 1).

The command's parts, one module each: `parser` (the argument parser, which asks each
group for its subcommands), `errors` (an exception -> the operator's line), and the
groups of subcommands: `serving` (the HTTP servers: ``dev``, ``serve``,
``serve-webhooks``, ``emulator``), `background` (``worker``, ``scheduler``) and
`operating` (one-shot commands: ``ready``, ``budget``, ``migrate``, ``token``,
``rotate-keys``).
"""

from __future__ import annotations

from collections.abc import Sequence

from calsync.cli.errors import fail, operator_error
from calsync.cli.parser import build_parser
from calsync.config import ConfigError

__all__ = ["build_parser", "main", "operator_error"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``calsync`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        fail("invalid configuration: " + "; ".join(exc.problems))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = operator_error(exc)
        if message is None:
            raise  # a bug: its traceback is what a report needs
        fail(message)
        return 1
    return status
