import sys

from bench.api.cli import main

sys.exit(main())
