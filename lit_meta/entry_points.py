"""What every command-line entry point (``train.py``, ``evaluate.py``) does with an error: one line on
stderr and an exit status instead of a traceback.

* bad input (:class:`~lit_meta.errors.ConfigError`, or a parser error of jsonargparse reduced to
  ``key: reason``): exit status 2 (:data:`BAD_INPUT`);
* a run stopped on a failure (:class:`~lit_meta.errors.RunStopped`, or an error of the machine such as a
  full disk, :func:`lit_meta.files.environment_error_in`): exit status 3 (:data:`RUN_STOPPED`).
"""

import sys
from collections.abc import Callable
from typing import TypeVar

from jsonargparse import CLI, ArgumentError

from lit_meta.errors import ConfigError, RunStopped, config_error_in
from lit_meta.files import describe_os_error, environment_error_in
from lit_meta.launch import is_launching_process
from lit_meta.noise import silence_library_noise

T = TypeVar("T")

BAD_INPUT = 2
RUN_STOPPED = 3

_PARSER_NOISE = (
    "Parser key",
    "Does not validate",
    "Subtypes:",
    "Errors:",
    "Given value",
    "Expected a <class 'NoneType'>",
    "Problem with given class_path",
)


def one_line_parser_error(message: str) -> str:
    """jsonargparse's report of a bad command-line or config value, reduced to ``key: reason``.

    Its reports nest one block per level of subclass resolution (``model`` -> ``FewShotModule`` ->
    ``inner_lr``); the innermost key and the first line that says what is wrong are what a user needs.
    """
    lines = [line.strip().removeprefix("- ").strip() for line in message.splitlines()]
    keys = [line.split('"')[1] for line in lines if line.startswith('Parser key "')]
    reasons = [
        line.split('": ', 1)[1] if line.startswith('Parser key "') and '": ' in line else line
        for line in lines
        if line and (not line.startswith(_PARSER_NOISE) or '": ' in line)
    ]
    if not keys or not reasons:
        return " ".join(line for line in lines if line)
    return f"{'.'.join(keys)}: {reasons[0]}"


def run_reporting_bad_input(command: Callable[[], T]) -> tuple[int, T | None]:
    """Run a command-line entry point: ``(0, result)``, or ``(status, None)`` after printing one line
    ``error: <reason>`` on stderr when it failed on bad input (a parser error or a :class:`ConfigError`,
    status 2), or stopped on a failure (a :class:`RunStopped` or an error of the machine such as a full
    disk, status 3), anywhere in the chain of causes. Any other exception propagates: it is a bug."""
    # every process of a data-parallel job reports; the workers say that they are one
    prefix = "error:" if is_launching_process() else "error (data-parallel worker):"
    try:
        return 0, command()
    except ArgumentError as error:
        print(f"{prefix} {one_line_parser_error(str(error))}", file=sys.stderr)
        return BAD_INPUT, None
    except Exception as error:
        known = config_error_in(error, (ConfigError, RunStopped))
        if known is not None:
            print(f"{prefix} {known}", file=sys.stderr)
            return (BAD_INPUT if isinstance(known, ConfigError) else RUN_STOPPED), None
        machine = environment_error_in(error)
        if machine is None:
            raise
        print(f"{prefix} {describe_os_error(machine)}", file=sys.stderr)
        return RUN_STOPPED, None


def run_function_cli(function: Callable[..., T], args: list[str] | None) -> tuple[int, T | None]:
    """``function`` called with keyword arguments parsed from the command line (jsonargparse's ``CLI``,
    its docstring as help), run as :func:`run_reporting_bad_input` runs a command."""
    silence_library_noise()
    return run_reporting_bad_input(lambda: CLI(function, args=args, as_positional=False, exit_on_error=False))


__all__ = ["BAD_INPUT", "RUN_STOPPED", "one_line_parser_error", "run_function_cli", "run_reporting_bad_input"]
