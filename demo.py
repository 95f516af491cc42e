"""Restore your own images with a DFPIR checkpoint.

    python demo.py --ckpt CHECKPOINT --degradation noise25 --input photo.jpg [--output_dir restored/]
    python demo.py --ckpt CHECKPOINT --degradation rain --input folder/ --tile 512

Any image size works: the image is padded to a multiple of 8 and the output cropped back, so the
restored PNG has the input's size. ``--tile`` bounds memory on large images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from data.transforms import to_tensor
from engine.common import UsageError, accelerator, prompt_table_for, run_cli
from net.checkpoint import load_pretrained, read_checkpoint
from net.dfpir import DFPIR, PRESETS
from net.prompts import BACKENDS, PROMPT_SETS
from utils.image_io import is_image_file, read_rgb, write_png
from utils.tasks import TASKS
from utils.tiling import restore_image

DEGRADATIONS = {
    "noise15": "denoise_15",
    "noise25": "denoise_25",
    "noise50": "denoise_50",
    "rain": "derain",
    "haze": "dehaze",
    "blur": "deblur",
    "lowlight": "lowlight",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--ckpt", "--pretrained_1", dest="ckpt", required=True, help="checkpoint (any format)")
    parser.add_argument("--degradation", required=True, choices=list(DEGRADATIONS), help="what to remove")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--output_dir", default="restored", help="where restored PNGs are written")
    parser.add_argument("--tile", type=int, default=None, help="tile size (a multiple of 8); default: whole image")
    parser.add_argument("--tile_overlap", type=int, default=32)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--model", default="paper", choices=list(PRESETS),
                        help="network preset for checkpoints that do not record it")
    parser.add_argument("--prompt_set", default="detailed", choices=list(PROMPT_SETS))
    parser.add_argument("--prompt_embeddings", default=None, metavar="FILE")
    parser.add_argument("--prompt_backend", default="clip", choices=list(BACKENDS))
    return parser


def input_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
        if images:
            return images
        raise UsageError(f"{path} holds no images (png, jpg, jpeg, bmp, tif)")
    raise UsageError(f"--input {path} does not exist")


def run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    images = input_images(Path(args.input))
    task = DEGRADATIONS[args.degradation]
    checkpoint = read_checkpoint(args.ckpt)
    table = prompt_table_for(args, checkpoint, [task])
    net = DFPIR(**(checkpoint.model_config or PRESETS[args.model]().to_dict()))
    load_pretrained(net, checkpoint)
    device = torch.device("cuda" if accelerator(args.device) != "cpu" and torch.cuda.is_available() else "cpu")
    net = net.to(device).eval()
    code = table.embeddings[TASKS[task].de_id][None].to(device)
    out_dir = Path(args.output_dir)
    for path in tqdm(images, desc=f"restoring ({args.degradation})", unit="image"):
        img = to_tensor(read_rgb(path))[None].to(device)
        with torch.inference_mode():
            restored = restore_image(lambda x: net(x, code), img, args.tile, args.tile_overlap).clamp(0, 1)
        write_png(out_dir / f"{path.stem}.png", restored[0].permute(1, 2, 0).cpu().numpy())
    print(f"wrote {len(images)} image(s) to {out_dir}/ (prompts: {table.source})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
