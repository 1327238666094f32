"""The one base class of every error caused by the user's input.

Each carries a one-line message naming the problem and the fix; the CLI prints it
and exits 2, the plugin turns it into a usage error (exit 4). No torch here.
"""


class InputError(ValueError):
    pass
