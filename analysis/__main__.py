import sys

from analysis.errors import interrupted

try:
    from analysis.cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C before the command's own handler is in place (imports) or after it
    if "--debug" in sys.argv:
        raise
    code = interrupted()
raise SystemExit(code)
