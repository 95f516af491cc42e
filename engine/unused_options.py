"""Options a network does not use: one policy everywhere, a note on stderr and never a refusal (issue 30, case 7).

A network without text prompts (PromptIR: blind by construction) restores whatever degradation an image has:
the prompt options (``--prompt_embeddings``, noted by ``engine.prompt_tables.prompt_table_for``), the degradation
asked for (noted by ``demo.py``) and the degradation-recognition options (``--blind``, ``--recognizer``,
:func:`note_unused_recognition`) do not apply to it. Each is noted once, on one line, and the command runs,
so a comparison of DFPIR blind with PromptIR (``--blind`` with both checkpoints) is one command.
"""

from __future__ import annotations

import sys

from net.registry import NetworkSpec

RECOGNITION_FLAGS = ("blind", "recognizer")
"""The flags of blind restoration with a degradation recogniser (for networks with text prompts)."""


def note_unused_recognition(args: object, network: NetworkSpec) -> None:
    """One note on stderr naming the recognition flags given (``args``: a command's configuration) that
    ``network`` does not use (none if it uses them)."""
    given = [f"--{flag}" for flag in RECOGNITION_FLAGS if getattr(args, flag, None)]
    if given and not network.uses_text_prompts:
        print(f"note: {network.describe()} takes no text prompts (it is blind by construction): "
              f"{' and '.join(given)} do{'es' if len(given) == 1 else ''} not apply to it and "
              f"{'is' if len(given) == 1 else 'are'} not used for it", file=sys.stderr)
