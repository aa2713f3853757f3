"""The ``sleepkd`` command line: ``sleepkd demo``, ``sleepkd experiment``,
``sleepkd predict``.

:func:`main` parses the arguments, configures logging (library modules only log) and
turns errors into one line on stderr and an exit code: 0 success, 1 bad input (a
missing or unreadable file, a recording the model cannot use), 2 bad usage. ``--debug``
shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

PROG = "sleepkd"


class UsageError(Exception):
    """Bad command-line usage (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting on bad usage."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _TqdmHandler(logging.Handler):
    """Log records written through tqdm, so they do not break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


#: Loggers whose settings the CLI changes (and restores when ``main`` returns).
_CLI_LOGGERS = ("sleepkd", "sleepkd.distillation", "sleepkd.signal", "sleepkd.datasets",
                "sleepkd.io")


def _logging_state() -> list:
    return [(logging.getLogger(name), logging.getLogger(name).level,
             logging.getLogger(name).propagate, list(logging.getLogger(name).handlers))
            for name in _CLI_LOGGERS]


def _restore_logging(state: list) -> None:
    """Undo :func:`configure_logging`, so that calling ``main`` from Python (a notebook,
    a test) leaves the caller's logging as it was."""
    for logger, level, propagate, handlers in state:
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers[:] = handlers


def configure_logging(quiet: bool = False, debug: bool = False) -> None:
    """Log sleepkd's messages to stderr: warnings only with ``quiet``, progress
    otherwise, everything with ``debug``. Called by the CLI only."""
    logger = logging.getLogger("sleepkd")
    for handler in list(logger.handlers):
        if isinstance(handler, _TqdmHandler):
            logger.removeHandler(handler)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"
                                           if not debug else
                                           "%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    if not debug:
        # per-model progress of the runner and the CLI's own steps; the estimators'
        # stage messages only at --debug
        for name in ("sleepkd.distillation", "sleepkd.signal", "sleepkd.datasets",
                     "sleepkd.io"):
            logging.getLogger(name).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sleepkd`` command."""
    from sleepkd import __version__
    from sleepkd.cli import _demo, _experiment, _predict, _train

    parser = _Parser(
        prog=PROG,
        description="Sleep staging from a single-lead ECG, distilled from an EEG model.",
    )
    parser.add_argument("--version", action="version", version=f"sleepkd {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks and debug logs")
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (_demo, _experiment, _train, _predict):
        module.add_parser(sub, [common])
    from sleepkd.cli import _prepare
    _prepare.add_parser(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sleepkd`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    code : int
        0 on success, 1 on bad input (missing or unreadable file, unusable data),
        2 on bad usage, 130 when interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging_state = _logging_state()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            raise UsageError("a command is required: demo, experiment, train or predict")
        configure_logging(quiet=getattr(args, "quiet", False), debug=args.debug)
        return int(args.run(args) or 0)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        if debug:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    finally:
        _restore_logging(logging_state)


__all__ = ["main", "build_parser", "configure_logging"]
