"""Train the variable-tracking models shipped in weights/tracking/ (see `lib.tracking.train`).

python -m bench.train_tracking feedback-1 transformer-1 transformer-2 transformer-4 scratchpad-2
"""

from lib.tracking.train import main

if __name__ == "__main__":
    main()
