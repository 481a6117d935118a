"""The one exception type for bad user input.

Everything a user can get wrong (a config value, a missing file, a checkpoint from another model) is
raised as :class:`ConfigError` with one sentence that names the problem; the command-line entry points
print that sentence and exit with status 2 instead of a traceback.
"""

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """Bad user input, explained in one sentence."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)


def require_positive(name: str, value: float | int) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a number greater than zero."""
    require(value > 0, f"{name} must be positive, got {value}")


def config_error_in(error: BaseException) -> ConfigError | None:
    """The :class:`ConfigError` that ``error`` is or was raised from, if any.

    Libraries between lit-meta and the user (jsonargparse instantiating classes, Lightning running
    hooks) re-raise errors wrapped in their own; the original sentence is found along the chain.
    """
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ConfigError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


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


def run_reporting_bad_input(command: Callable[[], T]) -> tuple[bool, T | None]:
    """Run a command-line entry point: ``(True, result)``, or ``(False, None)`` after printing one line
    ``error: <reason>`` on stderr when it failed on bad input (a parser error, or a :class:`ConfigError`
    anywhere in the chain of causes). Any other exception propagates: it is a bug, not bad input."""
    from jsonargparse import ArgumentError

    try:
        return True, command()
    except ArgumentError as error:
        print(f"error: {one_line_parser_error(str(error))}", file=sys.stderr)
    except Exception as error:
        config_error = config_error_in(error)
        if config_error is None:
            raise
        print(f"error: {config_error}", file=sys.stderr)
    return False, None
