"""Peak resident memory of one command, measured from outside: ``python -m bench.rss CMD ARGS…``.

Runs the command as this process's only child, counts the Singer RECORD lines it writes (so its
output is consumed as a target would, not buffered in memory here), and prints one JSON line:
``{"peak_rss_bytes": …, "records": …, "exit_code": …}``. The peak comes from the kernel
(``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the child was reaped), so no sample is missed.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def measure(command: list[str]) -> dict[str, int]:
    """Run ``command``: its peak RSS in bytes, the RECORD lines it wrote and its exit code."""
    records = 0
    with subprocess.Popen(command, stdout=subprocess.PIPE) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith(b'{"type":"RECORD"') or line.startswith(b'{"type": "RECORD"'):
                records += 1
        code = child.wait()
    # Linux reports ru_maxrss in KiB.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"peak_rss_bytes": peak, "records": records, "exit_code": code}


def main() -> int:
    """Measure the command given as arguments, print the JSON line; the command's exit code."""
    if len(sys.argv) < 2:
        print("usage: python -m bench.rss COMMAND [ARGS...]", file=sys.stderr)
        return 2
    result = measure(sys.argv[1:])
    print(json.dumps(result))
    return result["exit_code"]


if __name__ == "__main__":
    raise SystemExit(main())
