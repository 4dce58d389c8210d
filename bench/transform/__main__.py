import sys

from bench.transform.cli import main

sys.exit(main())
