"""The suite's errors: one hierarchy, so the CLI catches only ours (anything else is a bug and
keeps its traceback)."""

# what a command says when Ctrl-C stops it (exit 130), from its handler in `cli.main` or, during
# the imports before that handler exists, in `__main__`
INTERRUPTED = "interrupted: the command stopped before it finished."


def interrupted() -> int:
    """Say INTERRUPTED and ignore further Ctrl-C while the process shuts down (a second
    KeyboardInterrupt during shutdown would kill it by the signal, not exit 130)."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(INTERRUPTED, file=sys.stderr)
    return 130


class AnalysisError(Exception):
    """A problem the user can fix; the message is one sentence that says what to do."""


class DataError(AnalysisError):
    """The data folder cannot give what was asked (missing, unreadable or unusable files)."""


class SettingsError(AnalysisError):
    """A settings file or override names something unknown or holds a bad value."""


class PeriodError(AnalysisError):
    """The period or as-of day asked for is not covered by the data."""


class UsageError(AnalysisError):
    """Arguments that do not fit together or name nothing known."""
