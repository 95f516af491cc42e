"""Smoke tests of benchmarks/benchmark.py with the tiny preset: the measurement functions, the table
and the summary line the issue checks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import torch

from benchmarks import benchmark as bm
from net.registry import create_model

SUMMARY = re.compile(r"speedup infer256=\d+\.\d\d train=\d+\.\d\d max_abs_diff=\d\.\d\de[+-]\d\d")
ROOT = Path(__file__).resolve().parents[1]


def tiny_models(paths: list[bm.PathSpec]) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    reference = create_model("tiny")
    cpu = torch.device("cpu")
    return {p.name: bm.build_model(reference, p, cpu, channels_last=True, compile=False) for p in paths}


def test_main_prints_a_table_and_ends_with_the_summary_line(capsys):
    summary = bm.main(["--preset", "tiny", "--quick", "--repeats", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == summary
    assert SUMMARY.fullmatch(summary)
    rows = [line for line in lines if line.startswith("| ")]
    assert len(rows) == 2 + 3 * 2  # header, rule, eager and fast for three cases
    assert "| train    | 2x3x128x128 | fast " in "\n".join(rows)
    assert float(summary.rsplit("=", 1)[1]) < 1e-4


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_measure_case_times_every_path_and_compares_outputs(training):
    paths = bm.default_paths("fp32")
    case = bm.Case("small", training=training, batch=2, size=32)
    results = bm.measure_case(case, tiny_models(paths), paths, torch.device("cpu"), warmup=2, repeats=3,
                              log=lambda _: None)
    assert set(results) == {"eager", "fast"}
    for m in results.values():
        assert len(m.times_s) == 3 and all(t > 0 for t in m.times_s) and m.first_s > 0
        assert m.output.shape == (2, 3, 32, 32)
        assert m.peak_mib is None or m.peak_mib >= 0
    assert bm.max_abs_diff(results["fast"].output, results["eager"].output) < 1e-4


def test_training_steps_update_the_weights():
    paths = bm.default_paths("fp32")[:1]
    model = tiny_models(paths)["eager"]
    before = model.patch_embed.proj.weight.detach().clone()
    case = bm.Case("t", training=True, batch=2, size=16)
    step = bm.make_step(model, case, bm.make_inputs(case, torch.device("cpu")), "fp32")
    step()
    assert not torch.equal(model.patch_embed.proj.weight, before)


def test_bf16_fast_path_adds_a_float32_check_for_inference_only():
    paths = {p.name: p for p in bm.default_paths("bf16")}
    assert paths["fast"].precision == "bf16" and paths["fast-fp32"].precision == "fp32"
    assert not paths["fast-fp32"].training
    case = bm.Case("small", training=False, batch=1, size=16)
    models = tiny_models(list(paths.values()))
    results = bm.measure_case(case, models, list(paths.values()), torch.device("cpu"), 1, 1, log=lambda _: None)
    assert bm.max_abs_diff(results["fast-fp32"].output, results["eager"].output) < 1e-4


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_memory_sees_an_allocation_that_is_freed_again():
    with bm.peak_memory(torch.device("cpu")) as memory:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, written
        del block
    assert 60 <= memory["mib"] < 200


def test_summary_line_uses_medians_and_only_float32_fast_differences():
    def m(times: list[float], value: float) -> bm.Measurement:
        return bm.Measurement(first_s=1.0, times_s=times, output=torch.full((1, 3, 2, 2), value))

    results = {
        "infer256": {"eager": m([3.0, 4.0, 100.0], 0.0), "fast": m([2.0, 2.0, 1.0], 0.5),
                     "fast-fp32": m([3.0], 2e-6)},
        "train": {"eager": m([9.0], 0.0), "fast": m([3.0], 0.5)},
    }
    line = bm.summary_line(results, bm.default_paths("bf16"))
    assert line == "speedup infer256=2.00 train=3.00 max_abs_diff=2.00e-06"


def test_table_is_markdown_with_one_cell_per_column():
    case = bm.Case("infer128", False, 1, 128)
    results = {
        "eager": bm.Measurement(2.0, [1.0, 1.2], 100.0, torch.zeros(1)),
        "fast": bm.Measurement(1.0, [0.5, 0.6], None, torch.full((1,), 1e-6)),
    }
    table = bm.format_table(bm.table_rows(case, results, bm.default_paths("fp32")))
    lines = table.splitlines()
    assert all(line.count("|") == len(bm.COLUMNS) + 1 for line in lines)
    assert "| 1100.0 " in lines[2] and "| n/a " in lines[3] and "| 1.00e-06" not in table
    assert re.search(r"\| 2\.00\s+\| 1\.0e-06", lines[3])


def test_cpu_defaults_and_refusals():
    args = bm.parse_args(["--quick"])
    assert (args.precision, args.compile, args.warmup, args.repeats) == ("fp32", False, 1, 3)
    assert [c.batch for c in bm.default_cases(quick=True)] == [1, 1, 2]
    assert [c.batch for c in bm.default_cases(quick=False)] == [1, 1, 5]
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            bm.parse_args(["--device", "cuda"])


def test_gpu_check_script_is_valid_bash_and_writes_the_expected_file():
    script = ROOT / "benchmarks" / "gpu_check.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "set -e" in text and "PYTHONUNBUFFERED=1" in text
    assert "benchmarks/benchmark.py --device cuda" in text and "$OUT/benchmark_cuda.txt" in text


def test_fast_models_get_every_speed_option(monkeypatch):
    calls = []
    monkeypatch.setattr(bm, "prepare_for_speed", lambda model, **options: calls.append(options) or model)
    reference = create_model("tiny")
    for path in bm.default_paths("bf16"):
        bm.build_model(reference, path, torch.device("cpu"), channels_last=False, compile=True,
                       compile_mode="reduce-overhead")
    expected = {"channels_last": False, "compile": True, "compile_mode": "reduce-overhead"}
    assert calls == [expected, expected]  # fast and fast-fp32; eager stays as the parity test runs it


def test_at_least_one_warmup_and_one_timed_call_are_required():
    for option in ("--warmup", "--repeats"):
        with pytest.raises(SystemExit):
            bm.parse_args([option, "0"])


def test_a_network_without_text_prompts_is_timed_without_a_text_code(monkeypatch):
    from net.promptir import PromptIR

    seen = []
    forward = PromptIR.forward

    def spy(self, img, text_code=None):
        seen.append(text_code)
        return forward(self, img, text_code)

    monkeypatch.setattr(PromptIR, "forward", spy)
    summary = bm.main(["--model", "promptir_tiny", "--quick", "--repeats", "1", "--cases", "infer128", "train"])
    assert summary.startswith("speedup infer256=n/a train=")
    assert seen and all(code is None for code in seen)
    assert bm.make_inputs(bm.default_cases(True)[0], torch.device("cpu"), text_dim=None)["text_code"] is None
