"""The degradation tasks of DFPIR: one registry shared by prompts, data, training and reports.

Each task has a degradation id (the row of the prompt table, spec section 2), a training repeat
factor per setting (how many times one epoch visits each training image, spec section 3), the test
set it is evaluated on (spec section 4) and the published PSNR / SSIM (spec section 4).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One degradation task.

    name:     the task name used by every flag and report (``--de_type``, ``--tasks``).
    de_id:    degradation id: the row of the prompt table this task's samples are steered by.
    sigma:    Gaussian noise level (0-255 scale) for the denoising tasks, else None.
    kind:     the dataset family: 'denoise', 'derain', 'dehaze', 'deblur' or 'lowlight'.
    test_set: the benchmark the task is evaluated on, as the paper's tables name it.
    """

    name: str
    de_id: int
    sigma: int | None
    kind: str
    test_set: str


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("denoise_15", 0, 15, "denoise", "CBSD68 s15"),
        Task("denoise_25", 1, 25, "denoise", "CBSD68 s25"),
        Task("denoise_50", 2, 50, "denoise", "CBSD68 s50"),
        Task("derain", 3, None, "derain", "Rain100L"),
        Task("dehaze", 4, None, "dehaze", "SOTS"),
        Task("deblur", 5, None, "deblur", "GoPro"),
        Task("lowlight", 6, None, "lowlight", "LOL"),
    )
}

TASK_BY_ID: dict[int, Task] = {t.de_id: t for t in TASKS.values()}


@dataclass(frozen=True)
class Setting:
    """A training/evaluation setting of the paper: the 3D (three degradations) or 5D mixture.

    train_repeats: task name -> how many times one epoch visits each training image of that task.
    test_tasks:    the columns of the paper's table, in the paper's order.
    published:     task name -> (PSNR, SSIM) reported in the paper; 'average' over test_tasks.
    val_every:     validation interval in training steps used by the authors.
    """

    name: str
    train_repeats: dict[str, int]
    test_tasks: tuple[str, ...]
    published: dict[str, tuple[float, float]]
    val_every: int


SETTINGS: dict[str, Setting] = {
    "3D": Setting(
        name="3D",
        train_repeats={"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 120, "dehaze": 1},
        test_tasks=("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"),
        published={
            "dehaze": (31.87, 0.980),
            "derain": (38.65, 0.982),
            "denoise_15": (34.14, 0.935),
            "denoise_25": (31.47, 0.893),
            "denoise_50": (28.25, 0.806),
            "average": (32.88, 0.919),
        },
        val_every=2000,
    ),
    "5D": Setting(
        name="5D",
        train_repeats={
            "denoise_15": 3,
            "denoise_25": 3,
            "denoise_50": 3,
            "derain": 80,
            "dehaze": 1,
            "deblur": 30,
            "lowlight": 60,
        },
        test_tasks=("dehaze", "derain", "denoise_25", "deblur", "lowlight"),
        published={
            "dehaze": (31.64, 0.979),
            "derain": (37.62, 0.978),
            "denoise_25": (31.29, 0.889),
            "deblur": (28.82, 0.873),
            "lowlight": (23.82, 0.843),
            "average": (30.64, 0.913),
        },
        val_every=3000,
    ),
}

