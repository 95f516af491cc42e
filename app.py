"""The web demo: restore an image in the browser with a DFPIR checkpoint (Gradio).

    python app.py [--ckpt FILE|HUB_FOLDER|REPO_ID] [--recognizer FILE] [--host 127.0.0.1] [--port 7860]

Without --ckpt it serves the quick start's checkpoint (``python quickstart.py`` writes it). The
restoration is demo.py's (``engine/inference.py``): the downloaded PNG equals, pixel for pixel, what
``demo.py`` writes for the same image and options. The app needs no internet (no analytics, no version
check, nothing fetched) and writes only in its own temporary folder, removed when it stops.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from data.evalsets import load_test_images
from data.layouts import DatasetPaths, eval_pairs
from data.sample import make_sample_dataset
from engine.cli import is_out_of_memory, quiet_expected_notices
from engine.inference import AUTO, DEFAULT_OVERLAP, Restorer, RestorerOptions, open_restorer
from engine.memory import available_memory, bytes_per_pixel, untiled_pixel_limit
from engine.preflight import USER_ERRORS, UsageError
from net.run_options import RecognizerOption, checkpoint_option
from quickstart import build_parser as quickstart_parser
from utils import signals
from utils.config import build_parser as build_config_parser
from utils.config import opt, read_command_line, resolve
from utils.image_io import ImageReadError, image_size, read_rgb, write_png
from utils.serve_address import address_problem
from utils.signals import run_stoppable
from utils.tasks import TASKS, degradation_choices

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio's import: no telemetry, no version check
import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

QUICKSTART = Path(quickstart_parser().get_default("out"))
DEFAULT_CKPT = QUICKSTART / "checkpoints" / "last.ckpt"
MAX_PIXELS = 4096 * 4096  # larger uploads are refused
TILE_ABOVE_PIXELS = 1024 * 1024  # tiling "auto" restores larger images tile by tile
DEFAULT_TILE = 512
PAGE_TILE_HINT = "set Tiling to auto or on (a smaller Tile size takes less memory)"
"""What to change in the page when an image does not fit in memory (the CLI's is --tile, engine.cli.TILE_HINT)."""
CONCURRENCY = 1  # restorations at a time: one uses every core (or the GPU); the others wait in the queue
QUEUE_SIZE = 16  # waiting requests; more are turned away with a message
MAX_FILE_SIZE = "64mb"
UPLOAD_TYPES = [".png", ".jpg", ".jpeg", ".bmp", ".webp"]


@dataclass(frozen=True, kw_only=True)
class AppConfig(RestorerOptions, RecognizerOption):
    """app.py's options (the network's and the recogniser's shared with demo.py)."""

    ckpt: str | None = checkpoint_option(fallback=f"the quick start's {DEFAULT_CKPT}")
    host: str = opt("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    port: int = opt("--port", default=7860, help="port to serve on")


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(AppConfig, __doc__.split("\n\n")[0])


def example_inputs(data_root: Path, out_dir: Path, degradations: list[str]) -> list[Path]:
    """One stand-in test input per degradation offered (noisy ones made as the evaluation makes them),
    written as PNGs into ``out_dir``."""
    examples = []
    for name in degradations:
        task = TASKS[degradation_choices()[name]]
        pair = eval_pairs(task.kind, DatasetPaths.from_root(data_root))[0]
        path = out_dir / f"{name}.png"
        write_png(path, load_test_images(pair, task.online)[0])
        examples.append(path)
    return examples


def tile_for(shape: tuple[int, ...], tiling: str, tile: float | None) -> int | None:
    """The tile size to restore with: tiling 'on', or 'auto' above TILE_ABOVE_PIXELS; None: whole image."""
    large = shape[0] * shape[1] > TILE_ABOVE_PIXELS
    return int(tile or 0) if tiling == "on" or (tiling == "auto" and large) else None


def problem(err: Exception, upload: str | None) -> str:
    """The page's one line for a user's mistake; an upload is named by its file name, not its temporary path."""
    if is_out_of_memory(err):
        return f"out of memory; {PAGE_TILE_HINT}"
    name = Path(upload).name if upload else ""
    if isinstance(err, ImageReadError) and isinstance(err.__cause__, Image.DecompressionBombError):
        return f"{name} is too large to decode safely; this app takes images up to {MAX_PIXELS:,} pixels"
    if isinstance(err, ImageReadError):
        cause = err.__cause__ or err
        return (f"cannot read {name} as an image ({type(cause).__name__}: {str(cause).replace(str(upload), name)}); "
                f"upload a {', '.join(t[1:].upper() for t in UPLOAD_TYPES)} file")
    return str(err).replace(str(upload), name) if upload else str(err)


class App:
    """The page's restore handler on one Restorer; results go to ``work_dir``."""

    def __init__(self, restorer: Restorer, work_dir: Path):
        self.restorer, self.work_dir = restorer, work_dir
        # tiling "off" up to what the free memory holds at the network's measured bytes per pixel (engine/memory.py)
        self.untiled_limit = untiled_pixel_limit(restorer.network, available_memory(restorer.device))

    def restore(self, upload: str | None, degradation: str, tiling: str, tile: float | None, overlap: float | None):
        """-> (before/after pair, probabilities, the PNG to download, status line); a user's mistake is
        the status line, never a traceback."""
        try:
            if not upload:
                raise UsageError("upload an image first (or pick an example)")
            height, width = image_size(upload)
            if height * width > MAX_PIXELS:
                raise UsageError(f"the image is {width} x {height} pixels; this app takes up to {MAX_PIXELS:,} "
                                 "pixels (restore larger images with demo.py --tile 512)")
            if tiling == "off" and height * width > self.untiled_limit:
                raise UsageError(f"the image is {width} x {height} pixels; restored whole (Tiling off) it would need "
                                 f"more memory than this machine has free (the network takes about "
                                 f"{bytes_per_pixel(self.restorer.network) / 1e3:,.0f} kB per pixel, up to "
                                 f"{self.untiled_limit:,} pixels whole); {PAGE_TILE_HINT}")
            image = read_rgb(upload, exif_orientation=True)
            tiles = tile_for(image.shape, tiling, tile)
            result = self.restorer.restore(image, degradation, tiles, int(overlap or 0))
        except Exception as err:  # a bug is raised: Gradio shows "Error" in the page and logs the traceback
            if not isinstance(err, USER_ERRORS) and not is_out_of_memory(err):
                raise
            return None, None, None, f"**Cannot restore:** {problem(err, upload)}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        png = Path(tempfile.mkdtemp(dir=self.work_dir)) / f"{Path(upload).stem}.png"  # demo.py's output name
        write_png(png, result.image)
        probabilities = result.probabilities and {k: round(v, 4) for k, v in result.probabilities.items()}
        status = (f"Restored **{result.degradation}** ({image.shape[1]} x {image.shape[0]}"
                  f"{f', tiles of {tiles}' if tiles else ''}) in {result.seconds:.2f} s "
                  f"on {self.restorer.device.type.upper()}")
        return (image, result.image), probabilities, str(png), status


def degradation_note(restorer: Restorer) -> str:
    """The page's sentence on the degradation choice, shaped by the network: none to choose for a blind network,
    ``auto`` with a recogniser, else how to get ``auto`` (only a network with text prompts can use a recogniser)."""
    if not restorer.uses_text_prompts:
        return (f"`{restorer.network.describe()}` is blind (it takes no text prompts): it restores whatever "
                "degradation an image has, so there is no degradation to choose.")
    if restorer.recognizer is not None:
        return "`auto`: the degradation recogniser picks the degradation and shows its probabilities."
    return ("`auto` needs a degradation recogniser: start the app with `--recognizer FILE` "
            "(`python train_recognizer.py`).")


def build_app(restorer: Restorer, examples: list[Path], work_dir: Path, source: str) -> gr.Blocks:
    auto = [AUTO] if restorer.recognizer is not None else []
    degradations = auto + restorer.degradations
    blind = not restorer.uses_text_prompts
    handler = App(restorer, work_dir)
    # delete_cache: uploads and served files older than an hour are removed every hour
    with gr.Blocks(title="DFPIR", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown(
            "# DFPIR: all-in-one image restoration\n"
            f"Checkpoint `{source}` (prompts: {restorer.table.source}) on {restorer.device.type.upper()}. "
            f"Images up to {MAX_PIXELS:,} pixels and {MAX_FILE_SIZE.upper()}; tiling `auto` restores those "
            f"above {TILE_ABOVE_PIXELS:,} pixels tile by tile, `off` restores whole images up to "
            f"{handler.untiled_limit:,} pixels (the free memory at this network's measured memory per pixel). "
            f"{CONCURRENCY} restoration at a time, the "
            "others queue.\n\n" + degradation_note(restorer))
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Image (PNG, JPEG, BMP, WebP; EXIF orientation applied)",
                                 file_types=UPLOAD_TYPES, type="filepath", elem_id="upload")
                gr.Examples([[str(p)] for p in examples], inputs=[upload], label="Stand-in test images",
                            cache_examples=False)
                degradation = gr.Dropdown(degradations, value=degradations[0], label="Degradation",
                                          elem_id="degradation", visible=not blind)  # blind: not used
                with gr.Row():
                    tiling = gr.Radio(["auto", "on", "off"], value="auto", label="Tiling", elem_id="tiling")
                    tile = gr.Number(DEFAULT_TILE, precision=0, minimum=8, label="Tile size", elem_id="tile")
                    overlap = gr.Number(DEFAULT_OVERLAP, precision=0, minimum=0, label="Tile overlap",
                                        elem_id="overlap")
                button = gr.Button("Restore", variant="primary", elem_id="restore")
            with gr.Column():
                slider = gr.ImageSlider(label="Before / after", type="numpy", format="png", elem_id="result")
                status = gr.Markdown(elem_id="status")
                download = gr.File(label="Restored image (full resolution, lossless PNG)", elem_id="download")
                probabilities = gr.Label(label="Recogniser's probabilities", visible=bool(auto),
                                         elem_id="probabilities")
        button.click(handler.restore, [upload, degradation, tiling, tile, overlap],
                     [slider, probabilities, download, status], concurrency_limit=CONCURRENCY)
    return page.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)


def main(argv: list[str] | None = None) -> int:
    """Serve the page until stopped: exit 2 with one line for a bad flag, address or checkpoint (the address is
    checked before the model is loaded), 130/143/129 for Ctrl-C, SIGTERM, SIGHUP (``utils.signals``), each
    removing the app's temporary folder."""
    return run_stoppable(lambda: serve(resolve(AppConfig, read_command_line(build_parser(), AppConfig, argv))))


def serve(args: AppConfig) -> int:
    """Check, load, serve (:func:`main`)."""
    quiet_expected_notices()
    unusable = address_problem(args.host, args.port)
    if unusable is not None:
        print(f"error: {unusable}", file=sys.stderr)
        return 2
    if args.ckpt is None:
        if not DEFAULT_CKPT.is_file():
            print(f"error: no --ckpt given and no {DEFAULT_CKPT}; run python quickstart.py (a few minutes on a CPU) "
                  "or pass --ckpt FILE|HUB_FOLDER|REPO_ID", file=sys.stderr)
            return 2
        args = replace(args, ckpt=str(DEFAULT_CKPT))
    try:
        restorer = open_restorer(args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    work_dir = Path(tempfile.mkdtemp(prefix="dfpir-app-"))
    try:
        stop = _serve_from(args, restorer, work_dir)
    except KeyboardInterrupt as interrupted:  # a signal before the server runs
        stop = interrupted
    finally:  # whatever ended the app: an error or a signal
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if stop is None else signals.report(stop, f"its temporary folder {work_dir} was removed")


def _serve_from(args: argparse.Namespace, restorer: Restorer, work_dir: Path) -> KeyboardInterrupt | None:
    """Build the page on ``restorer`` with its files in ``work_dir`` and serve it until a signal stops it; the
    signal (Gradio's server takes the KeyboardInterrupt it raises, ``utils.signals.received`` keeps it)."""
    os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "gradio")  # uploads and served files
    data_root = QUICKSTART / "data"
    if not (data_root / "test").is_dir():
        data_root = work_dir / "sample"
        make_sample_dataset(data_root, train_size=16, test_size=96, scale=0.01)
    examples = example_inputs(data_root, work_dir / "examples", restorer.degradations)
    print(f"temporary folder: {work_dir}", flush=True)
    page = build_app(restorer, examples, work_dir / "results", args.ckpt)
    page.launch(server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE, share=False,
                ssr_mode=False, mcp_server=False, pwa=False, footer_links=[], enable_monitoring=False,
                show_error=False)
    return signals.received()


if __name__ == "__main__":
    sys.exit(main())
