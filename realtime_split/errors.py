"""User-facing errors.

A ``UserError`` is a mistake the user can fix (a missing file, an unknown stem,
a model without metadata). The CLI prints its message as one line and exits
non-zero without a traceback; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem caused by the user's input; the message names it and the fix."""

    exit_code = 2


class ModelFormatError(UserError):
    """An ONNX file that does not follow docs/model-format.md."""
