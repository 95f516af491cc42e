"""Train the degradation recogniser that makes DFPIR blind (``--blind``, ``demo.py --degradation auto``).

    python train_recognizer.py --setting 3D|5D [--data_root DIR] [--max_steps N] [--output FILE]

Options: python train_recognizer.py --help; the training run lives in engine/recognizer_training.py.
"""

import sys

from engine.recognizer_training import main

if __name__ == "__main__":
    sys.exit(main())
