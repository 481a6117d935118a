"""Train a meta-learner from a YAML config.

python train.py fit --config configs/sine_reptile.yaml
python train.py fit --config configs/sine_reptile.yaml --ckpt_path last      # resume
python train.py test --config configs/sine_reptile.yaml --ckpt_path best
python train.py fit --config configs/sine_maml.yaml --print_config           # every option
"""

import sys

from lit_meta.cli import main

if __name__ == "__main__":
    sys.exit(main())
