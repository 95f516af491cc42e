"""The data options several commands share: dataset folders, name lists, crops, preloading.

Fields of configuration mixins (``utils/config.py``), declared once; a command's configuration
inherits those it has. The dataset-folder flags (``--denoise_dir`` ...) come from the task records
(``utils.tasks.folder_flags``), read when a parser is built: a command's context says which split
(``{"split": "test"}``; none: training and test folders).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data.layouts import AUTHORS_NAME_LISTS, DatasetPaths
from utils.config import Config, at_least, opt
from utils.tasks import DATASETS, folder_flags


def _name_lists_help(context) -> str:
    lists = ", ".join(d.train.name_list for d in DATASETS.values() if d.train.name_list)
    return (f"folder of the name lists ({lists}) that select the training images; default: the authors' lists "
            "shipped in data/name_lists/ (every listed image must exist); 'none': every image found in each folder")


@dataclass(frozen=True, kw_only=True)
class DataOptions(Config):
    """``--data_root`` and one flag per dataset folder, each overriding one folder of the standard layout."""

    data_root: str = opt("--data_root", default="datasets", group="datasets",
                         help="root of the standard dataset layout (docs/datasets.md); every folder defaults to its "
                         "place under it")
    folders: dict[str, str | None] = opt(default={}, keys=lambda context: folder_flags(context.get("split")),
                                         group="datasets", metavar="DIR", help="overrides one folder under --data_root")

    def dataset_paths(self) -> DatasetPaths:
        """The dataset folders from ``data_root``, the per-folder flags and (training) ``data_file_dir``."""
        overrides = {flag: Path(folder) for flag, folder in self.folders.items() if folder}
        data_file_dir = getattr(self, "data_file_dir", None)
        if data_file_dir is not None and str(data_file_dir).lower() == "none":
            data_file_dir = None
        return DatasetPaths.from_root(self.data_root, data_file_dir, **overrides)


@dataclass(frozen=True, kw_only=True)
class NameListsOption(Config):
    data_file_dir: str = opt("--data_file_dir", default=str(AUTHORS_NAME_LISTS), metavar="DIR|none",
                             group="datasets", help=_name_lists_help)


@dataclass(frozen=True, kw_only=True)
class PatchSizeOption(Config):
    patch_size: int = opt("--patch_size", default=128, keep_on_resume=True, group="training",
                          help="training crop in pixels (the paper's 128; the dataset check requires images this "
                          "large)")


@dataclass(frozen=True, kw_only=True)
class PreloadOption(Config):
    preload_gb: float = opt("--preload_gb", default=4.0, group="training",
                            rule=at_least(0, "must be 0 (no preloading) or more"),
                            help="decode the most revisited training sets (Rain100L, LOL, GoPro) into RAM up to this "
                            "many GB; 0 disables")
