"""Exceptions that carry a one-line message meant for the user.

Every check on user input raises one of these; the console scripts print the
message alone (no traceback) and exit with status 2, unless HYDRA_FULL_ERROR=1.
"""

from __future__ import annotations


class SimclrError(Exception):
    """Base class: a problem with the user's input, described in one line."""


class ConfigError(SimclrError):
    """A configuration value is missing, of the wrong kind or out of range."""


class DataError(SimclrError):
    """A data set, folder or image cannot be used as asked."""


class CheckpointError(SimclrError):
    """A checkpoint or weight file is missing, damaged or of another kind."""


class OutputError(SimclrError):
    """The output directory cannot be written, or would overwrite finished work."""
