"""One exception type for every problem a user can fix.

Library code raises :class:`NanosegError` with a one-line message that names the thing
(file, flag, class, layer) and the fix; CLIs print it as ``error: ...`` and exit 2. Anything
else is a bug and keeps its traceback.
"""


class NanosegError(Exception):
    """A user-fixable problem, described in one line."""
