"""`make bench`: our code against plain transformers calls, side by side in one run.

Runs every module of this package that defines `run()`, in name order; each prints one
`name: value` line per figure (ratios are ours ÷ theirs, lower is better). Last comes the
peak resident memory of the whole run, `rss_mb`.
"""

import importlib
import pkgutil
import resource

import bench
from bench.common import report

for module in sorted(pkgutil.iter_modules(bench.__path__), key=lambda info: info.name):
    if module.name not in {"__main__", "common", "loadtest", "loadtest_agent", "train_tracking"}:
        importlib.import_module(f"bench.{module.name}").run()

report("rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # peak, in MiB
