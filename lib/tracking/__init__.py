"""Variable tracking in miniature (Fan et al. 2020, §4.1): can a model follow one value through
a program of sequential, sometimes conditional, updates?

`task` makes and reads programs and measures how deep each print's dependency runs; `models`
holds the three trained kinds (transformer, feedback transformer, scratchpad transformer);
`scoring` the held-out sets, accuracy by length and by depth, and the shortcuts; `records` the
shipped weights and their JSON records; `live` runs one program through every model; `train`
trains them (not imported here: the page never trains).
"""

from lib.tracking.live import LiveRun, live_run
from lib.tracking.models import (
    FeedbackRun,
    FeedbackState,
    KVCache,
    ScratchpadTransformer,
    TrackingFeedback,
    TrackingModel,
    TrackingTransformer,
    Writing,
    build,
)
from lib.tracking.records import (
    WEIGHTS_DIR,
    Shipped,
    load_shipped,
    read_records,
    read_reference,
    shipped_names,
)
from lib.tracking.scoring import (
    BASELINES,
    DEPTH_BUCKETS,
    MIN_PRINTS,
    RECENT,
    RECENT_SHORTCUT,
    TEST_PROGRAMS,
    TEST_SETS,
    HeldOutTable,
    Score,
    accuracy,
    depth_bucket,
    depth_programs,
    held_out,
    held_out_sets,
    held_out_table,
    last_assignment,
    predictions,
    recent_updates,
    skip_conditionals,
)
from lib.tracking.task import (
    NO_TARGET,
    TOKEN_ID,
    TRAIN_STATEMENTS,
    VALUES,
    VOCAB,
    Program,
    Statement,
    encode,
    parse_program,
    random_program,
)

__all__ = [
    "BASELINES",
    "DEPTH_BUCKETS",
    "MIN_PRINTS",
    "RECENT",
    "RECENT_SHORTCUT",
    "NO_TARGET",
    "TEST_PROGRAMS",
    "TEST_SETS",
    "TOKEN_ID",
    "TRAIN_STATEMENTS",
    "VALUES",
    "VOCAB",
    "WEIGHTS_DIR",
    "FeedbackRun",
    "FeedbackState",
    "HeldOutTable",
    "KVCache",
    "LiveRun",
    "Program",
    "Score",
    "ScratchpadTransformer",
    "Shipped",
    "Statement",
    "TrackingFeedback",
    "TrackingModel",
    "TrackingTransformer",
    "Writing",
    "accuracy",
    "build",
    "depth_bucket",
    "depth_programs",
    "encode",
    "held_out",
    "held_out_sets",
    "held_out_table",
    "last_assignment",
    "live_run",
    "load_shipped",
    "parse_program",
    "predictions",
    "random_program",
    "recent_updates",
    "read_records",
    "read_reference",
    "shipped_names",
    "skip_conditionals",
]
