"""Do open_clip (this project's prompt encoder) and OpenAI's ``clip`` code give bit-identical prompt codes on CUDA?

    pip install openai-clip          # OpenAI's CLIP code (module ``clip``); not a project dependency
    python benchmarks/clip_cuda_parity.py [--device cuda] [--out clip_parity.json]

The released checkpoints saw the text features of OpenAI's ``clip`` package, each prompt encoded alone
(a batch of one), in float16 on CUDA (docs/protocol.md section 2). This project computes them with open_clip
(``net.prompts.encode_with_clip``). On the CPU both give bit-identical features on identical
float16 weights; on CUDA open_clip runs attention batch-first and OpenAI's code sequence-first, which
may select other kernels. CLIP's real weights cannot be downloaded everywhere, so both models get the
same random weights, rounded to float16 as OpenAI's released weights are; the comparison is about the
code path, not the weights.

For every prompt of the detailed and simple prompt sets, the script compares, bit for bit:
- the tokens (open_clip's tokenizer against ``clip.tokenize``);
- ``net.prompts.encode_with_clip`` (the project's own code path, open_clip in float16, one prompt at a
  time) against OpenAI's ``CLIP.encode_text`` as ``clip.load`` builds it on that device (float16 on
  CUDA), one prompt at a time, as the authors' test scripts did;
- for information, open_clip with all prompts in one batch against one at a time.

It prints one line per prompt and a verdict, writes the numbers to ``--out`` and exits with 0 when
every feature is bit-identical, 1 when some differ (then the project needs a backend that runs
OpenAI's code path, see issue 11), 2 when ``clip`` is not installed or a feature overflowed float16.
A GPU machine without internet needs a wheel: ``pip download openai-clip --no-deps -d wheels/`` where
there is internet, then ``pip install --no-deps wheels/openai_clip-*.whl`` (ftfy and regex come with
open_clip).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from net import prompts  # noqa: E402
from utils.tasks import prompt_set_names, prompts_of  # noqa: E402


def shared_weights(seed: int) -> dict[str, torch.Tensor]:
    """A random ViT-B-32 (QuickGELU) state dict in OpenAI's key names, every value float16-representable."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.create_model(prompts.CLIP_MODEL, pretrained=None, force_quick_gelu=True)
    return {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def project_features(texts: list[str], weights: dict[str, torch.Tensor], device: str, batch: bool) -> torch.Tensor:
    """``net.prompts.encode_with_clip`` with ``weights`` in place of the downloaded ones -> (N, 512) float32."""
    import open_clip

    real_create_model = open_clip.create_model

    def create_model(name, pretrained=None, **kwargs):  # the project's call, with our weights instead of a download
        model = real_create_model(name, pretrained=None, **kwargs)
        model.load_state_dict(weights)
        return model

    with mock.patch.object(open_clip, "create_model", create_model), \
            mock.patch.object(prompts, "_clip_weights_available", lambda: True):
        if not batch:
            return prompts.encode_with_clip(texts, device)
        with mock.patch.object(prompts, "_encode", _encode_batch):
            return prompts.encode_with_clip(texts, device)


def _encode_batch(model, texts: list[str], device: torch.device) -> torch.Tensor:
    """All prompts in one batch (what this project did before encoding each prompt alone)."""
    import open_clip

    with torch.no_grad():
        return model.encode_text(open_clip.get_tokenizer(prompts.CLIP_MODEL)(texts).to(device)).float().cpu()


def openai_features(texts: list[str], weights: dict[str, torch.Tensor], device: str) -> torch.Tensor:
    """OpenAI's CLIP as ``clip.load(..., device="cuda")`` builds it (float16 weights), one prompt at a time.

    (On the CPU ``clip.load`` would cast the model to float32; it stays in float16 here, like the project's
    encoder, so that a CPU run compares like with like.)
    """
    import clip

    model = clip.model.build_model({k: v.clone() for k, v in weights.items()}).to(device)
    with torch.no_grad():
        return torch.cat([model.encode_text(clip.tokenize([t]).to(device)).float().cpu() for t in texts])


def import_openai_clip():
    """``import clip``; openai-clip 1.0.1 takes ``packaging`` from setuptools' ``pkg_resources``, which
    recent environments lack: provide it from the ``packaging`` package then."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import packaging.version

        sys.modules["pkg_resources"] = types.SimpleNamespace(packaging=packaging)
    import clip

    return clip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shared random weights")
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts (a quick CPU dry run)")
    parser.add_argument("--out", default="clip_parity.json", help="where to write the numbers")
    args = parser.parse_args(argv)
    try:
        clip = import_openai_clip()
    except ImportError:
        print("error: OpenAI's CLIP code is not installed: pip install openai-clip (or a wheel of it)", file=sys.stderr)
        return 2
    import open_clip

    texts = list(dict.fromkeys(p for s in prompt_set_names() for p in prompts_of(s)))[: args.limit]
    weights = shared_weights(args.seed)
    ours = project_features(texts, weights, args.device, batch=False)
    batched = project_features(texts, weights, args.device, batch=True)
    theirs = openai_features(texts, weights, args.device)
    tokens_equal = torch.equal(open_clip.get_tokenizer(prompts.CLIP_MODEL)(texts), clip.tokenize(texts))

    rows = []
    for i, text in enumerate(texts):
        rows.append({"prompt": text, "equal": torch.equal(ours[i], theirs[i]),
                     "max_abs_diff": float((ours[i] - theirs[i]).abs().max()),
                     "batch_equal": torch.equal(ours[i], batched[i]),
                     "batch_max_abs_diff": float((ours[i] - batched[i]).abs().max())})
        print(f"{'equal' if rows[-1]['equal'] else 'DIFFERENT':9} max|diff| {rows[-1]['max_abs_diff']:.3e}  "
              f"(batch of all: {'equal' if rows[-1]['batch_equal'] else 'different'}, "
              f"{rows[-1]['batch_max_abs_diff']:.3e})  {text}")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    finite = bool(torch.isfinite(ours).all() and torch.isfinite(theirs).all())  # float16 may overflow: then meaningless
    summary = {"device": device_name, "torch": torch.__version__, "open_clip": open_clip.__version__,
               "tokens_equal": tokens_equal, "finite": finite, "all_equal": all(r["equal"] for r in rows),
               "feature_norms": [round(float(n), 3) for n in ours.norm(dim=1)],
               "prompts": rows}
    Path(args.out).write_text(json.dumps(summary, indent=2))
    if not finite:
        print("error: the features are not finite (float16 overflow): try another --seed", file=sys.stderr)
        return 2
    verdict = "BIT-IDENTICAL" if summary["all_equal"] and tokens_equal else "DIFFERENT"
    print(f"{verdict}: open_clip (this project) vs OpenAI's clip on {device_name}, torch {torch.__version__}, "
          f"tokens {'equal' if tokens_equal else 'DIFFERENT'}; numbers in {args.out}")
    return 0 if verdict == "BIT-IDENTICAL" else 1


if __name__ == "__main__":
    sys.exit(main())
