"""benchmarks/gpu_train.sh's pieces on the CPU: the run summary it parses, the real-size dataset it
trains on, its report lines. The whole script in its quick CPU mode runs with DFPIR_SLOW_TESTS=1
(minutes: it compiles with Inductor)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import bench_data, gpu_report
from data.evalsets import EvalSet
from data.layouts import DatasetPaths
from data.mixture import TrainMixture
from data.sample import make_sample_dataset
from engine.callbacks import RunSummary
from engine.train import main as train_main
from utils.tasks import DATASETS

ROOT = Path(__file__).resolve().parents[1]


def test_a_training_run_prints_the_speed_line_the_report_reads(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(RunSummary, "WARMUP_STEPS", 2)  # timed from step 2: steps 3 and 4, validation between
    root = tmp_path / "sample"
    make_sample_dataset(root, train_size=48, test_size=32)
    argv = ["--data_root", str(root), "--ckpt_dir", str(tmp_path / "run"), "--model", "tiny", "--patch_size", "32",
            "--batch_size", "2", "--num_workers", "0", "--device", "cpu", "--prompt_backend", "offline",
            "--logger", "csv", "--de_type", "derain", "--val_tasks", "derain", "--val_every", "3",
            "--max_steps", "4", "--data_file_dir", str(root / "data_file_dir")]
    assert train_main("3D", argv) == 0
    log = tmp_path / "train.log"
    log.write_text(capsys.readouterr().out)
    speed = gpu_report.parse_speed(log)
    assert speed is not None and speed.ms_per_step > 0 and speed.first_step_s > 0
    assert speed.validation_s > 0 and speed.peak_gib > 0


def test_report_lines_from_logs(tmp_path):
    (tmp_path / "faithful_step.log").write_text(
        "| case | shape | path | precision | first s | median ms | range ms | peak MiB | speedup | max abs diff |\n"
        "| train    | 5x3x128x128 | eager     | fp32      | 25.72   | 200.0     | 165-256  | 16416    | 1.00 | 0 |\n")
    speed = "speed: {rate} steps/s, {ms} ms/step over steps 9-300 (1.00 h per epoch of 100 steps); first step {f} s"
    (tmp_path / "train_eager_fp32.log").write_text(speed.format(rate=5, ms=200.0, f=3) + "; peak GPU memory 9.00 GiB\n")
    (tmp_path / "train_bf16_compile.log").write_text(
        "noise\n" + speed.format(rate=25, ms=40.0, f=12.5) + " (compilation included); validation 8.0 s (1 run(s)) "
        "= 50% of ...; peak GPU memory 6.50 GiB\n")
    (tmp_path / "train_warm_bf16.log").write_text("Epoch 0: 2/2 [loss=0.1]\rspeed: first step 150.0 s (compilation "
                                                  "included); peak GPU\n")
    (tmp_path / "data_rate_one.log").write_text(" setting  workers  samples/s  per worker\n      3D        0       "
                                               "70.0        70.0\n")
    (tmp_path / "data_rate_all.log").write_text("      3D       16     1000.0        62.5\n")
    lines = gpu_report.report(tmp_path, batch_size=5, val_every=2000)
    assert lines[0].startswith("faithful eager fp32 step") and "200.0 ms/step" in lines[0] and "16.03 GiB" in lines[0]
    assert lines[1] == ("loop --precision 32 (eager): 5.00 steps/s, 200.0 ms/step, speedup 1.00, peak 9.00 GiB, "
                        "first step 3.0 s")
    assert lines[2].startswith("loop --precision bf16-mixed --compile: 25.00 steps/s, 40.0 ms/step, speedup 5.00")
    assert "first step 12.5 s (compile from Inductor's cache), cold compile 150.0 s" in lines[2]
    assert "validation 8.0 s = 10.0% of the training time of 2000 steps" in lines[2]
    assert lines[3] == "loop --precision 32 --compile: no result (see train_fp32_compile.log)"
    assert lines[4] == ("data 3D: one worker 70.0 samples/s; 16 workers 1000.0 samples/s = 8.0x the 125.0 samples/s "
                        "of the fastest step")


def test_bench_data_writes_real_sizes_that_the_loaders_read(tmp_path):
    bench_data.write_dataset(tmp_path, images=2, test_sets=True, test_scale=0.01, processes=2)
    paths = DatasetPaths.from_root(tmp_path, data_file_dir=tmp_path / "data_file_dir")
    sizes = {kind: Image.open(next((tmp_path / DATASETS[kind].default_folder("train")).rglob("*.*"))).size
             for kind in ("derain", "dehaze", "deblur", "lowlight")}
    assert sizes == {"derain": (481, 321), "dehaze": (550, 413), "deblur": (1280, 720), "lowlight": (600, 400)}
    assert Image.open(next((tmp_path / "test" / "dehaze" / "input").iterdir())).size == (620, 460)
    mixture = TrainMixture(["denoise_15", "derain", "dehaze", "deblur", "lowlight"], "5D", paths, patch_size=32)
    assert bench_data.samples_per_second(mixture, samples=6, workers=0, batch_size=2) > 0
    assert len(EvalSet("dehaze", paths)) == 5 and len(EvalSet("derain", paths)) == 1


def test_gpu_train_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_train.sh")], check=True)


@pytest.mark.skipif(not os.environ.get("DFPIR_SLOW_TESTS"), reason="minutes; set DFPIR_SLOW_TESTS=1")
def test_gpu_train_script_quick_mode_on_the_cpu(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"),
           "PYTHON": sys.executable}
    subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_train.sh")], cwd=ROOT, env=env, check=True, timeout=7200)
    summary = (tmp_path / "out" / "train_summary.txt").read_text()
    assert "no result" not in summary, summary
    for label in ("faithful eager fp32 step", "loop --precision 32 (eager)", "loop --precision bf16-mixed --compile",
                  "loop --precision 32 --compile", "data 3D", "data 5D"):
        assert label in summary, label


def test_bench_data_refuses_too_few_samples_to_time(capsys):
    """One batch is worker start-up and is not timed: fewer than two would report 0 samples/s."""
    with pytest.raises(SystemExit) as exit_info:
        bench_data.main(["--samples", "9", "--batch_size", "5"])
    assert exit_info.value.code == 2 and "at least two batches" in capsys.readouterr().err
