"""Adapt a trained few-shot classifier to your own classes and predict your images.

python adapt.py --ckpt runs/x/checkpoints/best.ckpt --support my_support/ --query my_photos/
python adapt.py --ckpt <path> --support <dir> --query <dir> --steps 10 --out p.csv --export adapted.pt
python adapt.py --help
"""

import sys

from lit_meta.adapt import main

if __name__ == "__main__":
    sys.exit(main())
