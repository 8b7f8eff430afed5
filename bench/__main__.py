"""`make bench`: our code against plain transformers calls, side by side in one run.

Runs every module of this package that defines `run()`, in name order. Each prints one
`name: value` line per figure, then the peak resident memory (`rss_mb`); ratios are ours ÷ theirs (lower is better), measured on this
machine in this process.
"""

import importlib
import pkgutil
import resource

import bench
from bench.common import report

for module in sorted(pkgutil.iter_modules(bench.__path__), key=lambda info: info.name):
    if module.name not in {"__main__", "common"}:
        importlib.import_module(f"bench.{module.name}").run()

report("rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # peak, in MiB
