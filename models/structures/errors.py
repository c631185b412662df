"""The one exception type for bad input: its message is a single sentence meant for the user."""


class InputError(Exception):
    """A file, folder, option or value the user gave cannot be used; the message says which and why."""
