"""Measure how well a trained checkpoint adapts to held-out tasks.

python evaluate.py --ckpt runs/sine_reptile/checkpoints/last.ckpt
python evaluate.py --ckpt <path> --tasks 600 --steps 10 --shots 5
python evaluate.py --help
"""

import sys

from lit_meta.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
