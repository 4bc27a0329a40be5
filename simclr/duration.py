"""Wall-clock durations as users write them: `20m`, `1h30m`, `90s`, `2d`, `00:01:30:00`."""

from __future__ import annotations

import datetime as dt
import re

from simclr.errors import ConfigError

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_COMPACT = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?"
)
_COLONS = re.compile(r"(\d+):(\d{1,2}):(\d{1,2}):(\d{1,2})")  # Lightning's DD:HH:MM:SS


def parse_duration(text: object, key: str = "trainer.max_time") -> dt.timedelta:
    """The duration `text` names, > 0; ConfigError naming `key` otherwise.

    Accepts Lightning's `DD:HH:MM:SS` (`00:12:00:00`) and unit suffixes in the
    order d, h, m, s (`20m`, `1h30m`, `1.5h`, `2d12h`, `45s`).
    """
    value = str(text).strip().lower().replace(" ", "")
    seconds: float | None = None
    colons = _COLONS.fullmatch(value)
    if colons:
        days, hours, minutes, secs = (int(g) for g in colons.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    else:
        compact = _COMPACT.fullmatch(value)
        if compact and any(compact.groups()):
            seconds = sum(
                float(g) * _UNITS[u]
                for g, u in zip(compact.groups(), "dhms", strict=True)
                if g is not None
            )
    if seconds is None:
        raise ConfigError(
            f"{key}={text!r} is not a duration: write DD:HH:MM:SS (00:00:20:00) or "
            "units d/h/m/s (20m, 1h30m, 90s)"
        )
    if seconds <= 0:
        raise ConfigError(f"{key}={text!r} must be a duration > 0")
    return dt.timedelta(seconds=seconds)
