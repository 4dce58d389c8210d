"""One measurement in a fresh process: nothing cached from another path, and peak RSS
belongs to one path alone.

`python -m bench.transform.child FUNCTION SOURCE WORKDIR RESULT_JSON` runs
`paths.FUNCTIONS[FUNCTION]` and writes its result, wall and CPU seconds and peak RSS
(`ru_maxrss`) to RESULT_JSON.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from bench.ingest.child import vm_hwm_kib
from bench.ingest.paths import Probe
from bench.transform.paths import FUNCTIONS


def main(argv: list[str]) -> int:
    function, source, workdir, result = argv
    probe = Probe()
    measured = FUNCTIONS[function](Path(source), Path(workdir), probe)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    hwm_kib = vm_hwm_kib()
    measured.update(
        vm_hwm_mb=None if hwm_kib is None else hwm_kib / 1024,
        seconds=probe.seconds,
        cpu_seconds=probe.cpu_seconds,
        peak_rss_mb=peak_kib / 1024,
        baseline_rss_mb=probe.baseline_rss_kib / 1024,
    )
    Path(result).write_text(json.dumps(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
