"""How the command line reports errors: one clear line, no traceback (server/cli.py and the
modules of its command groups share it)."""

from __future__ import annotations

import functools
from typing import Any, NoReturn

import click

from .errors import CivicfedError
from .state import InstanceMismatch
from .store import StoreError


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def cli_errors(func: Any) -> Any:
    """Show typed errors as one clear line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CivicfedError as err:
            details = "".join(f"\n  {e.get('pointer', '')} {e.get('detail', '')}" for e in err.errors)
            fail(f"{err.detail}{details}")
        except (StoreError, InstanceMismatch) as err:
            fail(str(err))
        except OSError as err:  # a file named on the command line
            fail(f"{err.filename}: {err.strerror}" if err.filename else str(err))

    return wrapper
