"""One measurement in a fresh process: nothing cached from another path, and peak RSS
belongs to one path alone.

`python -m bench.transform.child FUNCTION SOURCE WORKDIR RESULT_JSON` runs
`paths.FUNCTIONS[FUNCTION]` and writes its result, wall and CPU seconds and peak RSS
(`ru_maxrss`) to RESULT_JSON.
"""

import sys

from bench.child import child_main
from bench.transform.paths import FUNCTIONS

if __name__ == "__main__":
    sys.exit(child_main(FUNCTIONS))
