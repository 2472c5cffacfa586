"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class UserError(Exception):
    """Bad input or a missing file: something the user can fix.

    The CLI prints ``mdr-graph <command>: error: <message>`` and exits with status 2.
    Raise it with a message that names the file or value at fault and, where it helps,
    says how to fix it.
    """
