"""The two exception types a user sees as one sentence instead of a traceback.

* :class:`ConfigError`, bad user input: everything a user can get wrong (a config value, a missing or
  damaged file, a checkpoint from another model). Exit status 2 (:data:`BAD_INPUT`).
* :class:`RunStopped`, a run that stopped on a failure it cannot continue past: a loss or weights that
  stopped being finite, a checkpoint that could not be written (a full disk, a read-only mount). What
  was on disk before is intact. Exit status 3 (:data:`RUN_STOPPED`); an error of the machine
  (:func:`lit_meta.files.environment_error_in`) raised anywhere else counts as one too.
"""

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


BAD_INPUT = 2
RUN_STOPPED = 3


class ConfigError(ValueError):
    """Bad user input, explained in one sentence."""


class RunStopped(RuntimeError):
    """A run that stopped on a failure, explained in one sentence; the last good checkpoint is kept."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)


def require_positive(name: str, value: float | int) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a number greater than zero."""
    require(value > 0, f"{name} must be positive, got {value}")


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (or its type's name), for quoting in one sentence."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def cause_in_chain(error: BaseException, matches: Callable[[BaseException], bool]) -> BaseException | None:
    """The first exception along ``error``'s chain of causes and contexts (``error`` included) that
    ``matches``, if any.

    Libraries between lit-meta and the user (jsonargparse instantiating classes, Lightning running
    hooks, torch cleaning up after a failed write) re-raise errors wrapped in their own; the original
    is found along the chain.
    """
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if matches(current):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def config_error_in(
    error: BaseException, kinds: tuple[type[BaseException], ...] = (ConfigError,)
) -> BaseException | None:
    """The error of one of ``kinds`` (default :class:`ConfigError`) that ``error`` is or was raised
    from, if any."""
    return cause_in_chain(error, lambda cause: isinstance(cause, kinds))


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
    from jsonargparse import ArgumentError

    from lit_meta.files import describe_os_error, environment_error_in
    from lit_meta.launch import is_launching_process

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
