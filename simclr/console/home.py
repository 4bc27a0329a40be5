"""`~` in command-line values: expanded to the home directory before Hydra parses them.

Hydra's override grammar has no `~` among the characters of an unquoted value
(hydra/grammar/OverrideLexer.g4, ``UNQUOTED_CHAR``), so ``data.root=~/data/cifar10``
fails with a lexer error; and the shell leaves that `~` alone, because
``data.root=~/...`` is not a variable assignment. Quoting it (``data.root='~/x'``)
would get past the lexer, but Hydra then takes the `~` literally: a
``hydra.run.dir='~/runs'`` becomes a folder named ``~`` in the working directory.

:func:`expand_home` therefore does what the shell does for ``VAR=~/x``: a value
that is ``~``, or starts with ``~/`` or ``~user/``, unquoted or wholly quoted, and
each such element of an unquoted comma-separated sweep (``data.root=~/a,~/b``),
becomes the absolute path, quoted for Hydra when it holds characters its grammar
does not take unquoted (a space). Any key is treated so: no value of ours starts
with `~` otherwise, and before this such a value was a parse error. A leading
``~key`` (Hydra's "delete this key") is left alone, as are values with brackets,
braces or function calls (``glob(...)``), whose grammar is Hydra's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from simclr.errors import ConfigError

# Characters Hydra accepts in an unquoted value (besides letters and digits).
_UNQUOTED = re.compile(r"[A-Za-z0-9_/\-+.%@:]*")
# A value we may split at commas: no quoting, nesting or interpolation of Hydra's.
_SIMPLE = re.compile(r"[^'\"\[\]{}()\\$\s]*")
_QUOTED = re.compile(r"""(['"])(~[^'"]*)\1""")


def _expanded(part: str, override: str) -> str:
    path = os.path.expanduser(part)
    if path.startswith("~"):
        user = part[1:].split("/", 1)[0]
        raise ConfigError(
            f"{override}: no user {user!r} to expand {part.split('/', 1)[0]}; "
            "write the path without ~"
        )
    return hydra_value(path, override)


def hydra_value(path: str, override: str) -> str:
    """`path` as an override value Hydra parses back to itself: bare, or quoted."""
    if _UNQUOTED.fullmatch(path):
        return path
    # Inside Hydra's quotes a backslash is literal unless it precedes a quote.
    quote = "'" if "'" not in path else '"'
    if quote in path or path.endswith("\\"):
        raise ConfigError(f"{override}: {path} cannot be passed to Hydra; rename it or use a link")
    return f"{quote}{path}{quote}"


def expand_home(overrides: Sequence[str]) -> list[str]:
    """`overrides` with `~` in their values expanded (see the module doc)."""
    out: list[str] = []
    for override in overrides:
        key, equals, value = override.partition("=")
        if override.startswith("-") or not equals or "~" not in value:
            out.append(override)
        elif quoted := _QUOTED.fullmatch(value):
            out.append(f"{key}={_expanded(quoted.group(2), override)}")
        elif _SIMPLE.fullmatch(value):
            parts = value.split(",")
            parts = [_expanded(p, override) if p.startswith("~") else p for p in parts]
            out.append(f"{key}={','.join(parts)}")
        else:
            out.append(override)
    return out
