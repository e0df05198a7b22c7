"""Exception types raised at the package's edges; each message says what, where, the value and the fix."""


class ThemisError(Exception):
    """Base class for every error themis-rm raises on purpose."""


class ThemisInputError(ThemisError):
    """Bad user input: a file, row or field that cannot be used as given."""


class CriteriaError(ThemisInputError):
    """An unknown or ill-formed criterion name."""


class PromptPackError(ThemisError):
    """The prompt pack cannot be obtained, or its contents fail verification."""


class RenderError(ThemisError):
    """A conversation cannot be rendered into token ids within the limits asked for."""


class PromptTooLongError(RenderError):
    """Not one response token fits beside the prompt and template within ``max_length``."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class MissingExtraError(ThemisError):
    """An optional dependency group is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed; install it with: pip install 'themis-rm[{extra}]'")
