"""The one exception type that the command line turns into a one-line message."""


class UserError(Exception):
    """A problem the user can fix (bad file, bad preset, missing device). The message says how."""
