"""The one exception type users see: its message is printed as a single line by the CLI."""


class GenUnlearnError(Exception):
    """A problem with the user's input (data, request, config or checkpoint), stated in one line."""
