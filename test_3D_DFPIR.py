"""Evaluate a DFPIR checkpoint on the 3D test sets and compare with the paper's table.

    python test_3D_DFPIR.py --ckpt CHECKPOINT [--tasks ...] [--output_path DIR]

Options: python test_3D_DFPIR.py --help; the evaluation run lives in engine/evaluate.py.
"""

import sys

from utils.signals import exit_on_signals

with exit_on_signals():  # Ctrl-C, SIGTERM, SIGHUP while the imports load: one line, 130/143/129
    from engine.evaluate import main

if __name__ == "__main__":
    sys.exit(main("3D"))
