"""``python -m net.prompts``: compute a prompt table once and write it as a ``--prompt_embeddings`` file.

The command lives in the package's ``__main__`` so that running it does not execute ``net.prompts`` a second
time (``net`` imports it first, for the checkpoint formats): no runpy warning.
"""

import sys

from net.prompts import main

sys.exit(main())
