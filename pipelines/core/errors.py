"""The one exception a user sees: its message says what was wrong and what is valid."""


class MedEditError(ValueError):
    """Bad input or a missing resource, reported to the user without a traceback."""
