"""The common ending of every DVC stage script: bad input is a one-line message and exit code 1, not a traceback."""
from __future__ import annotations

import sys
from typing import Callable, NoReturn

from carremoval.io import InputError


def run_stage(name: str, main: Callable[[], int | None],
              errors: tuple[type[Exception], ...] = (InputError,)) -> NoReturn:
    """Run a stage's `main` and exit with its code; `errors` end it with `<name>: <message>` on stderr, code 1."""
    try:
        code = main()
    except errors as err:
        sys.exit(f"{name}: {err}")
    sys.exit(code or 0)
