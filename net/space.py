"""A Hugging Face Space that serves the web demo (``app.py``) on a DFPIR Hub folder.

``write_space(model_dir, space_dir)`` writes everything the Space runs, self-contained:

```
<space_dir>/
  README.md         the Space's front matter (Gradio SDK, app file, version) and a short description
  requirements.txt  this project's requirements and requirements-app.txt's gradio
  space_app.py      starts app.py on model/ at 0.0.0.0:7860, where a Space serves
  model/            a copy of the Hub folder (python -m net.hub --out)
  app.py quickstart.py options.py data/ engine/ net/ utils/   the project's code that app.py runs
```

A non-empty ``<space_dir>`` is refused unless ``overwrite`` (``--overwrite``), which replaces the files
written here (atomically, each moved into place once all are written) and keeps every other file.

Push it with ``hf upload --repo-type space USER/NAME <space_dir>`` (docs/demo.md, "Web demo"), or let
``python -m net.hub --space DIR`` write it beside the model folder.
"""

from __future__ import annotations

import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from utils.outputs import OutputError, check_output_dir, staged_folder

REPO = Path(__file__).resolve().parents[1]
CODE = ("app.py", "quickstart.py", "options.py", "data", "engine", "net", "utils")
LAUNCHER = "space_app.py"
MODEL_DIR = "model"
GRADIO_FALLBACK = "6.31.0"  # the version requirements-app.txt was tested with


def _gradio_version() -> str:
    try:
        return version("gradio")
    except PackageNotFoundError:
        return GRADIO_FALLBACK


def space_readme(title: str, model_repo: str | None = None) -> str:
    """README.md of the Space: its front matter (https://huggingface.co/docs/hub/spaces-config-reference)."""
    models = f"models:\n  - {model_repo}\n" if model_repo else ""
    return (f"---\ntitle: {title}\nemoji: 🌦️\ncolorFrom: blue\ncolorTo: gray\nsdk: gradio\n"
            f"sdk_version: {_gradio_version()}\napp_file: {LAUNCHER}\npinned: false\n{models}---\n\n"
            f"# {title}\n\nDFPIR (Degradation-Aware Feature Perturbation for All-in-One Image Restoration, CVPR 2025): "
            "upload a photo, pick the degradation (noise, rain, haze, blur, low light) and compare before and "
            "after; the restored image downloads as a full-resolution PNG.\n")


def check_space_dir(space_dir: str | Path, overwrite: bool = False) -> None:
    """OutputError (one line) if ``space_dir`` cannot take a Space: a file, unwritable, or a non-empty folder
    without ``overwrite``. Creates nothing."""
    space_dir = Path(space_dir)
    check_output_dir(space_dir)
    if space_dir.is_dir() and any(space_dir.iterdir()) and not overwrite:
        raise OutputError(f"--space {space_dir} exists and is not an empty folder; pass --overwrite to replace the "
                          "Space's files in it (its other files are kept), or choose a new folder")


def write_space(model_dir: str | Path, space_dir: str | Path, model_repo: str | None = None,
                overwrite: bool = False) -> Path:
    """Write the Space of the Hub folder ``model_dir`` into ``space_dir`` (new or empty; ``overwrite``: the
    Space's files there are replaced, other files kept); returns space_dir.

    model_repo: the model's Hub repository, linked from the Space's page.
    """
    model_dir, space_dir = Path(model_dir), Path(space_dir)
    check_space_dir(space_dir, overwrite)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    with staged_folder(space_dir) as staging:
        for name in CODE:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, staging / name, ignore=ignore)
            else:
                shutil.copyfile(source, staging / name)
        shutil.copytree(model_dir, staging / MODEL_DIR, ignore=ignore)
        requirements = (REPO / "requirements.txt").read_text().rstrip("\n")
        gradio = next(line for line in (REPO / "requirements-app.txt").read_text().splitlines()
                      if line.startswith("gradio"))
        (staging / "requirements.txt").write_text(f"{requirements}\n{gradio}\n")
        (staging / LAUNCHER).write_text(
            '"""The Space\'s entry point: the web demo on the model folder beside it."""\n\n'
            "import sys\n\nimport app\n\n"
            f'sys.exit(app.main(["--ckpt", "{MODEL_DIR}", "--host", "0.0.0.0", "--port", "7860"]))\n')
        (staging / "README.md").write_text(space_readme("DFPIR", model_repo))
    return space_dir
