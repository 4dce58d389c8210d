import sys

from bench.forecast.cli import main

if __name__ == "__main__":  # the forecaster's worker processes re-import the main module
    sys.exit(main())
