"""The LightningModule shared by training, validation and testing (docs/protocol.md sections 3 and 4).

- Training: the loss, optimiser and schedule of the network's recipe (``net/recipe.py``, registered
  with its architecture in ``net/registry.py``; DFPIR's: L1 between net(degraded, text code) and
  the clean patch, Adam lr 1e-4 with default betas and no weight decay, CosineAnnealingLR stepped
  once per epoch). The recipe computes each batch's loss from the network and the batch
  (``Recipe.training_loss``); the total is logged as ``loss`` and each named term as
  ``loss_<name>``. The text code of each sample is a row of the prompt table, indexed by the
  sample's degradation id (no CLIP per step).
  Under ``--compile`` the whole training forward and loss is one compiled graph (CUDA graphs on a
  GPU, see :meth:`RestorationModule.compile_training`). A step never waits for the GPU: the loss is
  logged as a device tensor, which Lightning reads only when it writes the log.
- Validation and testing: the evaluation protocol, whole images at batch 1, output clipped to
  [0, 1], scored and gathered across DDP processes by ``engine/scoring.py`` (reusable by any
  other LightningModule).
- Checkpoints are self-contained: ``checkpoint["dfpir"]`` holds the network's architecture name
  and configuration, the prompt set and the prompt table (see ``net/checkpoint/__init__.py``; None
  for a network without text prompts, which gets an empty table and is fed no codes).
"""

from __future__ import annotations

import lightning as L
import torch

from engine.scoring import EvalOptions, ImageRecord, Results, Scorer
from net.checkpoint import EXTRA_KEY, UNNAMED_ARCHITECTURE
from net.prompts import PromptTable, text_codes
from net.recipe import LossTerms, Recipe, TrainingBatch
from net.recognizer import DegradationRecognizer
from net.registry import build_network, recipe_of
from net.speed import prepare_for_speed, use_compile_cache
from utils.run_options import ChannelsLastOption
from utils.tiling import restore_image


class RestorationModule(L.LightningModule):
    """A restoration network with its prompt table, training recipe and evaluation protocol.

    model_config: the network's configuration; architecture: its registered name (``net/registry.py``;
    last so that hyper-parameters saved before the registry still construct DFPIR), which gives the
    recipe (``self.recipe``: loss, optimiser, schedule).
    prompt_table: ``PromptTable.to_dict()``.
    eval_tasks: the test sets validation/testing iterate over, in dataloader order.
    lr, lr_schedule_epochs: hyper-parameters of the recipe's optimiser and schedule; None: the recipe's.
    """

    def __init__(
        self,
        model_config: dict,
        prompt_table: dict,
        prompt_set: str = "detailed",
        setting: str = "3D",
        eval_tasks: list[str] | None = None,
        lr: float | None = None,
        lr_schedule_epochs: int | None = None,
        architecture: str = UNNAMED_ARCHITECTURE,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["prompt_table"])
        self.recipe: Recipe = recipe_of(architecture)
        for name in ("lr", "lr_schedule_epochs"):
            if self.hparams[name] is None:
                self.hparams[name] = getattr(self.recipe, name)
        self.net = build_network(architecture, model_config)
        # A blind network (PromptIR) gets an empty table and no codes (engine.prompt_tables.no_prompt_table).
        self.uses_text_prompts: bool = getattr(self.net, "uses_text_prompts", True)
        self.prompt_table = PromptTable.from_dict(prompt_table)
        self.register_buffer("prompt_codes", self.prompt_table.embeddings.clone(), persistent=False)
        self.eval_tasks = list(eval_tasks or [])
        self.eval_options = EvalOptions()
        self.eval_results: Results = {}
        self.eval_records: list[ImageRecord] = []  # every image of the last evaluation, sorted by (task, name)
        self.recognizer: DegradationRecognizer | None = None  # set for blind evaluation (engine/evaluate.py)
        self._scorer: Scorer | None = None
        self.compiled_training = False  # see compile_training
        self._compiled_loss = None

    # ----------------------------------------------------------------------------- network
    def forward(self, img: torch.Tensor, de_id: torch.Tensor) -> torch.Tensor:
        """img (B, 3, H, W) in [0, 1], de_id (B,) int -> restored (B, 3, H, W) (not clipped).

        The network gets the text codes of the samples' degradations (B, D), or None if it takes no
        text prompts (de_id is then not used)."""
        return self.net(img, self.text_codes(de_id))

    def text_codes(self, de_id: torch.Tensor) -> torch.Tensor | None:
        """The prompt codes (B, D) of degradation ids de_id (B,), or None for a network without text prompts
        (``net.prompts.text_codes``)."""
        return text_codes(self.prompt_codes if self.uses_text_prompts else None, de_id)

    def restore(self, img: torch.Tensor, de_id: torch.Tensor) -> torch.Tensor:
        """forward for whole images of any size, tiled as ``eval_options`` says."""
        opts = self.eval_options
        return restore_image(lambda x: self(x, de_id), img, self.net.size_multiple, opts.tile, opts.tile_overlap,
                             min_size=getattr(self.net, "min_size", 0))

    def setup(self, stage: str) -> None:
        # Every process must index the same table: take rank 0's (CLIP may differ across hosts).
        if self.trainer is not None and self.trainer.world_size > 1:
            self.prompt_codes = self.trainer.strategy.broadcast(self.prompt_codes.cpu()).to(self.prompt_codes.device)

    # ----------------------------------------------------------------------------- training
    def compile_training(self) -> None:
        """Compile the whole training forward and loss (``--compile``), from its first step on.

        One ``torch.compile`` graph of the network + the recipe's loss for the static training shapes
        (batch x 3 x patch x patch), differentiated as a whole; on CUDA with ``mode="reduce-overhead"``:
        the forward and the backward each replay as one CUDA graph, so the host no longer launches
        thousands of kernels per step. The network itself is not wrapped (its state-dict keys stay those of the
        released checkpoints, no ``_orig_mod.``) and evaluation, whose image sizes vary, stays eager.
        Compiled graphs are cached on disk (``net.speed.use_compile_cache``).
        """
        self.compiled_training = True

    def loss_terms(self, degraded: torch.Tensor, de_id: torch.Tensor, clean: torch.Tensor) -> LossTerms:
        """The recipe's loss of one batch (``Recipe.training_loss``; DFPIR: L1 between net(degraded,
        code[de_id]) and clean); degraded, clean (B, 3, P, P), de_id (B,) -> LossTerms."""
        batch = TrainingBatch(degraded, clean, de_id, self.text_codes(de_id))
        return self.recipe.training_loss(self.net, batch)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss_fn = self.loss_terms
        if self.compiled_training:
            if self._compiled_loss is None:
                mode = "reduce-overhead" if self.device.type == "cuda" else None
                self._compiled_loss = torch.compile(self.loss_terms, mode=mode, dynamic=False)
            if self.device.type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs are dead
            loss_fn = self._compiled_loss
        loss, terms = loss_fn(batch["degraded"], batch["de_id"], batch["clean"])
        # Device tensors, not numbers: no host synchronisation here. Lightning reads them when it
        # writes the log (every log_every_n_steps); the progress bar when it refreshes.
        batch_size = batch["degraded"].shape[0]
        self.log("loss", loss.detach(), batch_size=batch_size)
        for name, value in terms.items():
            self.log(f"loss_{name}", value.detach(), batch_size=batch_size)
        return loss

    def configure_optimizers(self):
        """The recipe's optimiser over the network's trainable parameters, and its schedule."""
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = self.recipe.optimizer(trainable, self.hparams)
        scheduler = self.recipe.scheduler(optimizer, self.hparams)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.recipe.interval}}

    def lr_scheduler_step(self, scheduler, metric) -> None:
        """Lightning's ``scheduler.step()``, or the recipe's ``scheduler_step`` (e.g. the schedule
        evaluated at ``current_epoch``)."""
        if self.recipe.scheduler_step is None:
            super().lr_scheduler_step(scheduler, metric)
        else:
            self.recipe.scheduler_step(scheduler, self.current_epoch, metric)

    def on_train_start(self) -> None:
        # A resumed optimizer takes its options from the checkpoint, which may come from another device
        # or an earlier version; fused Adam also keeps its step counts on the parameters' device.
        if self.recipe.device_options is None:
            return
        options = self.recipe.device_options(self.device)
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group.update(options)
                for param in group["params"]:
                    state = optimizer.state.get(param, {})
                    if "step" in state:
                        device = param.device if options.get("fused") else "cpu"
                        state["step"] = state["step"].to(device=device, dtype=torch.float32)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        table = PromptTable(self.prompt_table.prompts, self.prompt_codes.cpu(), self.prompt_table.source)
        checkpoint[EXTRA_KEY] = {
            "architecture": self.hparams.architecture,
            "model_config": dict(self.hparams.model_config),
            # A network without text prompts stores none.
            "prompt_set": self.hparams.prompt_set if self.uses_text_prompts else None,
            "prompt_table": table.to_dict() if self.uses_text_prompts else None,
            "setting": self.hparams.setting,
        }

    # ----------------------------------------------------------------------------- evaluation
    def restore_for_scoring(self, img: torch.Tensor, de_id: torch.Tensor) -> torch.Tensor:
        """What the protocol scores: ``restore`` (eager: ``--compile`` compiles the training step only),
        float32, clipped to [0, 1]."""
        return self.restore(img, de_id).float().clamp(0, 1)

    def _evaluate(self, batch: dict) -> None:
        """Restore and score one evaluation batch.

        With a ``recognizer`` (blind evaluation) the images are restored with the predicted ids and,
        only where a prediction is wrong, also with the known ones: one pass gives both the blind
        and the known-degradation scores.
        """
        degraded, de_id = batch["degraded"], batch["de_id"]
        if self._scorer is None:
            self._scorer = Scorer(self.eval_options.save_dir)
        known = self.restore_for_scoring(degraded, de_id)
        if self.recognizer is None:
            self._scorer.add(known, batch["clean"], batch["task"], batch["name"])
            return
        predicted = self.recognizer.predict(degraded)[0].to(de_id.device)
        right = bool((predicted == de_id).all())
        blind = known if right else self.restore_for_scoring(degraded, predicted)
        self._scorer.add(blind, batch["clean"], batch["task"], batch["name"], predicted.tolist(),
                         None if right else known)

    def _finish_evaluation(self) -> Results:
        scorer, self._scorer = self._scorer or Scorer(), None
        self.eval_results = scorer.finish(self.eval_tasks)  # a collective: every process calls it
        self.eval_records = scorer.records
        return self.eval_results

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch)

    def on_validation_epoch_end(self) -> None:
        results = self._finish_evaluation()
        if not results:
            return
        metrics = {f"val_{task}_{m}": v[m] for task, v in results.items() if task != "average"
                   for m in ("psnr", "ssim")}
        self.log_dict(metrics, sync_dist=False)
        self.log("val_psnr", results["average"]["psnr"], prog_bar=True, sync_dist=False)
        self.log("val_ssim", results["average"]["ssim"], sync_dist=False)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch)

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation()


def apply_speed_options(module: RestorationModule, args: ChannelsLastOption) -> RestorationModule:
    """The network's fast path and channels_last (``net/speed.py``; same function); with ``--compile``
    (training), the whole training step compiled (``RestorationModule.compile_training``)."""
    prepare_for_speed(module.net, channels_last=args.channels_last)
    if getattr(args, "compile", False):
        use_compile_cache()
        module.compile_training()
    return module
