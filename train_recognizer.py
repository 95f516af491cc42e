"""Train the degradation recogniser that makes DFPIR blind (``--blind``, ``demo.py --degradation auto``).

    python train_recognizer.py --setting 3D|5D [--data_root DIR] [--max_steps N] [--output FILE]

Options: python train_recognizer.py --help; the training run lives in engine/recognizer_training.py.
"""

import sys

from utils.signals import exit_on_signals

with exit_on_signals():  # Ctrl-C, SIGTERM, SIGHUP while the imports load: one line, 130/143/129
    from engine.recognizer_training import main

if __name__ == "__main__":
    sys.exit(main())
