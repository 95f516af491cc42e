"""Whether a training's ``--precision`` can run as asked on its device (issue 30, case 11).

Lightning runs ``--precision 16-mixed`` on the CPU as bf16-mixed (float16 autocast is a CUDA feature), so the
checkpoint recorded one precision while the run used another, and a resume with the precision that really
ran was refused as a change. Such a request is refused instead: what a checkpoint records is what ran.

This module imports nothing of the project.
"""

from __future__ import annotations


def precision_problem(precision: str, device: str, cuda_available: bool) -> str | None:
    """Why ``precision`` cannot run as asked on ``device`` ('auto', 'cpu', 'cuda'), one line; None if it can."""
    on_cpu = device == "cpu" or (device == "auto" and not cuda_available)
    if precision.startswith("16") and on_cpu:
        where = "--device cpu" if device == "cpu" else "this machine (PyTorch sees no CUDA device)"
        return (f"--precision {precision}: float16 mixed precision runs on a CUDA GPU only, and on {where} "
                "Lightning would train in bf16-mixed instead; use --precision bf16-mixed or 32")
    return None
