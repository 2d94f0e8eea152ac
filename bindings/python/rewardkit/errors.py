"""Errors of the rewardkit bindings."""

from ._ffi import ErrorCode


class RewardkitError(Exception):
    """An error reported by librewardkit, or found by the bindings first.

    `code` is an ErrorCode (the header's RK_ERR_* values), or a plain int
    for a code this version of the bindings does not know; `message` is the
    library's message.
    """

    def __init__(self, code, message):
        super().__init__(code, message)
        try:
            self.code = ErrorCode(code)
        except ValueError:
            self.code = int(code)
        self.message = message

    def __str__(self):
        name = self.code.name if isinstance(self.code, ErrorCode) else "unknown"
        return f"{self.message} (rewardkit error {int(self.code)} {name})"


class ScorerClosedError(RewardkitError):
    """A Scorer was used after close(). Its code is ErrorCode.NULL_ARGUMENT:
    the C handle is gone, so the call would have passed NULL."""

    def __init__(self, code=ErrorCode.NULL_ARGUMENT, message="the scorer is closed"):
        super().__init__(code, message)


def check(lib, err):
    """Raise RewardkitError for a non-NULL rk_error*, freeing it first."""
    if not err:
        return
    try:
        code = lib.rk_error_code(err)
        message = lib.rk_error_message(err).decode("utf-8", "replace")
    finally:
        lib.rk_error_free(err)
    raise RewardkitError(code, message)
