"""Train DFPIR on the 3D mixture with the protocol of the released checkpoints.

    python train_3D_DFPIR.py [--data_root DIR] [--check_data] [--resume auto] ...

Options: python train_3D_DFPIR.py --help; the training run lives in engine/train.py.
"""

import sys

from utils.signals import exit_on_signals

with exit_on_signals():  # Ctrl-C, SIGTERM, SIGHUP while the imports load: one line, 130/143/129
    from engine.train import main

if __name__ == "__main__":
    sys.exit(main("3D"))
