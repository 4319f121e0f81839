"""The one exception type the data package raises for bad or missing data."""


class DataError(Exception):
    """Bad input files, a missing or corrupted cache, or unusable options.

    The message is written for the person at the terminal: it names the file (and the 1-based
    line for text inputs) and, where data is missing or corrupted, the command that rebuilds it.
    The CLI prints it as ``error: <message>`` without a traceback.

    option: the task option (a make_options keyword, i.e. a key of a config's ``data`` section) the error is
    about, when it is about one (set by lra.options), so the trainer can name ``config.data.<option>``.
    """

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option
