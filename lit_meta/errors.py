"""The two exception types a user sees as one sentence instead of a traceback, and the checks that
raise them. The command-line entry points turn them into exit statuses (:mod:`lit_meta.entry_points`).

* :class:`ConfigError`, bad user input: everything a user can get wrong (a config value, a missing or
  damaged file, a checkpoint from another model).
* :class:`RunStopped`, a run that stopped on a failure it cannot continue past: a loss or weights that
  stopped being finite, a checkpoint that could not be written (a full disk, a read-only mount). What
  was on disk before is intact.
"""

from collections.abc import Callable


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


def require_one_of(name: str, value: object, choices: tuple) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    require(value in choices, f"{name} must be one of {choices}, got {value!r}")


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
