"""GAN training: settings from params, the generator/discriminator step, validation against the references,
atomic checkpoints with exact resume, and the stage's outputs (model, metrics, loss curves, one MLflow run).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from carremoval.data import Augment, PairFolder, RenderedPairs, image_to_tensor, mask_to_tensor, tensor_to_image
from carremoval.device import configure_cpu_threads, select_device
from carremoval.inpainters import Inpainter, telea
from carremoval.io import InputError, atomic_file, write_json
from carremoval.losses import AdversarialLoss, PixelLoss, VggInfo, build_perceptual_loss
from carremoval.metrics import image_scores, mean_scores
from carremoval.models import build_discriminator, build_generator, discriminator_channels, save_generator
from carremoval.models.generators import PREFILL_FILLS
from carremoval.params import flatten

if TYPE_CHECKING:
    from carremoval.tracking import Tracker

LOSS_TERMS = ("d_real", "d_fake", "d_total", "g_adv", "g_vgg", "g_pix", "g_total")
CHECKPOINT_PREFIX = "step-"


NUMBER_KINDS = {"int": int, "float": float}


def number(value: Any, kind: type, key: str, source: str) -> int | float:
    """`value` as int or float ('1e-4' from `dvc exp run -S lr=1e-4` is a YAML string); else a clear error."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}: {key} must be a number, got {value!r}") from None


@dataclass
class TrainSettings:
    """Everything the train stage reads from params.yaml: top-level `lr` and `seed`, and section `train`."""

    lr: float
    seed: int
    steps: int
    batch_size: int
    lr_d: float
    betas: tuple[float, float]
    lr_decay_start: float
    generator: dict[str, Any]
    discriminator: dict[str, Any]
    gan_mode: str
    label_smoothing: bool
    loss: dict[str, Any]
    vgg: dict[str, Any]
    eval_every: int
    checkpoint_every: int
    log_every: int
    samples: int
    device: str = "auto"
    threads: int = 0
    amp: bool = True
    channels_last: bool = True
    workers: int = 0
    augment: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_params(cls, params: dict[str, Any], source: str = "params.yaml") -> TrainSettings:
        """Read and check the settings; a missing or bad value names params.yaml and the key."""
        if "train" not in params or not isinstance(params["train"], dict):
            raise InputError(f"{source}: no `train` section")
        train = params["train"]
        names = [item.name for item in fields(cls) if item.name not in ("lr", "seed", "raw")]
        required = [item.name for item in fields(cls)
                    if item.default is MISSING and item.default_factory is MISSING and item.name in names]
        absent = [f"train.{name}" for name in required if name not in train]
        absent += [key for key in ("lr", "seed") if key not in params]
        if absent:
            raise InputError(f"{source}: missing {', '.join(absent)}")
        kinds = {item.name: NUMBER_KINDS.get(str(item.type)) for item in fields(cls)}
        values = {name: number(train[name], kinds[name], f"train.{name}", source) if kinds[name] else train[name]
                  for name in names if name in train}
        settings = cls(lr=number(params["lr"], float, "lr", source), seed=number(params["seed"], int, "seed", source),
                       raw=params, **values)
        settings.betas = tuple(number(beta, float, "train.betas", source) for beta in settings.betas)
        settings.check(source)
        return settings

    def check(self, source: str) -> None:
        problems = []
        if self.steps < 1 or self.batch_size < 1:
            problems.append("train.steps and train.batch_size must be positive")
        if self.lr <= 0 or self.lr_d <= 0:
            problems.append("lr and train.lr_d must be positive")
        if min(self.eval_every, self.checkpoint_every, self.log_every) < 1:
            problems.append("train.eval_every, checkpoint_every and log_every must be positive")
        if not 0.0 <= self.lr_decay_start <= 1.0:
            problems.append("train.lr_decay_start must be in [0, 1]")
        if problems:
            raise InputError(f"{source}: " + "; ".join(problems))

    def generator_config(self, image_size: tuple[int, int]) -> dict[str, Any]:
        """The config saved with the model: enough to rebuild it with build_generator(**config)."""
        return {**self.generator, "image_size": [int(image_size[0]), int(image_size[1])]}

    def fingerprint(self, data_signature: str) -> str:
        """What a checkpoint must match to be resumed: these settings and the training data."""
        text = json.dumps({"lr": self.lr, "seed": self.seed, "train": self.raw["train"], "data": data_signature},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def lr_factor(step: int, steps: int, decay_start: float) -> float:
    """1 until decay_start * steps, then linearly down to 0 at the last step (pix2pix's schedule)."""
    start = decay_start * steps
    if step <= start or steps <= start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (steps - start))


class GanTrainer:
    """Generator, discriminator, their optimisers and the losses; `step(batch)` does one D and one G update."""

    def __init__(self, settings: TrainSettings, image_size: tuple[int, int], device: torch.device):
        self.settings, self.device = settings, device
        self.config = settings.generator_config(image_size)
        self.mask_input = bool(self.config.get("mask_input", True))
        self.generator = build_generator(**self.config).to(device)
        self.discriminator = build_discriminator(
            in_channels=discriminator_channels(self.mask_input), **settings.discriminator).to(device)
        self.cuda = device.type == "cuda"
        self.amp = self.cuda and settings.amp
        if self.cuda and settings.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=settings.lr, betas=settings.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=settings.lr_d, betas=settings.betas)
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.adversarial = AdversarialLoss(settings.gan_mode, smoothing=settings.label_smoothing)
        loss = settings.loss
        self.pixel = PixelLoss(loss.get("pixel", "l1"), loss["pix_hole"], loss["pix_valid"])
        vgg = settings.vgg
        self.perceptual, self.vgg_info = build_perceptual_loss(
            layers=vgg.get("layers", ["block5_conv4"]), criterion=vgg.get("criterion", "mse"),
            weights=vgg.get("weights", "auto"), download=bool(vgg.get("download", False)),
            missing=vgg.get("missing", "skip"), seed=settings.seed)
        if self.perceptual is not None:
            self.perceptual.to(device)
        self.weights = {"adv": float(loss["adv"]), "vgg": float(loss["vgg"])}

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        if self.cuda and self.settings.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def condition(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the discriminator is conditioned on: the input with its hole emptied and the mask (mask mode),
        or the input itself (blind mode)."""
        return torch.cat([image * (1.0 - mask), mask], dim=1) if self.mask_input else image

    def set_lr(self, step: int) -> float:
        factor = lr_factor(step, self.settings.steps, self.settings.lr_decay_start)
        for group in self.opt_g.param_groups:
            group["lr"] = self.settings.lr * factor
        for group in self.opt_d.param_groups:
            group["lr"] = self.settings.lr_d * factor
        return self.settings.lr * factor

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One discriminator update, then one generator update; returns every loss term as a float."""
        self.generator.train()
        self.discriminator.train()
        image, target, mask = (self._to_device(batch[key]) for key in ("input", "target", "mask"))
        condition = self.condition(image, mask)
        with self._autocast():
            fake = self.generator(image, mask)
            real_logits = self.discriminator(condition, target)
            fake_logits = self.discriminator(condition, fake.detach())
            d_real, d_fake = self.adversarial.discriminator(real_logits, fake_logits)
            d_total = 0.5 * (d_real + d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(d_total).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()

        self.discriminator.requires_grad_(False)
        with self._autocast():
            g_adv = self.adversarial.generator(self.discriminator(condition, fake))
            g_vgg = self.perceptual(fake, target) if self.perceptual is not None else fake.new_zeros(())
            g_pix = self.pixel(fake, target, mask)
            g_total = self.weights["adv"] * g_adv + self.weights["vgg"] * g_vgg + g_pix
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(g_total).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.discriminator.requires_grad_(True)
        values = (d_real, d_fake, d_total, g_adv, g_vgg, g_pix, g_total)
        return {name: float(value.detach()) for name, value in zip(LOSS_TERMS, values)}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])


def rng_state() -> dict[str, Any]:
    """Torch's RNG states (all training randomness is torch's; the pair renderer seeds itself per pair)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpoints:
    """Checkpoints in one folder: step-NNNNNNNN.pt written atomically, the newest `keep` kept.

    A run that has written all its outputs empties the folder: checkpoints only serve a killed run, and an empty
    folder keeps the persisted DVC output the same after every finished run (other experiments included).
    """

    def __init__(self, folder: str | os.PathLike, keep: int = 1):
        self.folder, self.keep = Path(folder), max(1, keep)

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob(f"{CHECKPOINT_PREFIX}*.pt"))

    def save(self, state: dict[str, Any], step: int) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{CHECKPOINT_PREFIX}{step:08d}.pt"
        with atomic_file(path) as tmp:
            torch.save(state, tmp)
        for old in self.paths()[:-self.keep]:
            old.unlink(missing_ok=True)
        return path

    def latest(self, fingerprint: str) -> dict[str, Any] | None:
        """The newest readable checkpoint of this configuration, or None (a fresh start)."""
        for stale in self.folder.glob(f".{CHECKPOINT_PREFIX}*"):  # temp files of a killed save
            stale.unlink(missing_ok=True)
        for path in reversed(self.paths()):
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # a torn or foreign file: fall back to the one before
                tqdm.write(f"train: ignoring unreadable checkpoint {path} ({type(err).__name__})")
                continue
            if state.get("fingerprint") == fingerprint:
                return state
            tqdm.write(f"train: {path} was made with other params or data; starting fresh")
            return None
        return None

    def reset(self) -> None:
        """Remove every checkpoint (a fresh run, or a finished one)."""
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)


def predict(generator: nn.Module, folder: PairFolder, device: torch.device, batch_size: int = 16) -> list[np.ndarray]:
    """The generator's uint8 outputs for every pair of a folder, in order."""
    generator.eval()
    outputs = []
    loader = DataLoader(folder, batch_size=batch_size, shuffle=False, num_workers=0)
    with torch.inference_mode():
        for batch in loader:
            result = generator(batch["input"].to(device), batch["mask"].to(device))
            outputs += [tensor_to_image(image) for image in result]
    return outputs


def score_outputs(folder: PairFolder, outputs: list[np.ndarray]) -> dict[str, float]:
    """Mean photo metrics of `outputs` against the folder's targets, in the folder's holes."""
    rows = []
    for index, output in enumerate(outputs):
        _, target, mask = folder.arrays(index)
        rows.append(image_scores(output, target, mask))
    return mean_scores(rows)


def prefill_inpainter(fill: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Inpainter:
    """One of the generator's prefill fills alone (e.g. `pushpull_fill`) as a uint8 Inpainter."""
    def inpaint(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return tensor_to_image(fill(image_to_tensor(image)[None], mask_to_tensor(mask)[None])[0])
    return inpaint


def reference_scores(folder: PairFolder, prefill: str = "none") -> dict[str, dict[str, float]]:
    """The references a trained model must beat on the same pairs: the input itself and Telea, plus each fill
    the generator's `prefill` starts from (so the metrics show what training added)."""
    methods = {"input": lambda image, mask: image, "telea": telea(radius=3)}
    for name, fill in PREFILL_FILLS.get(prefill, {}).items():
        methods[name] = prefill_inpainter(fill)
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    for index in range(len(folder)):
        image, _, mask = folder.arrays(index)
        for name, method in methods.items():
            outputs[name].append(method(image, mask))
    return {name: score_outputs(folder, images) for name, images in outputs.items()}


def sample_grid(folder: PairFolder, outputs: list[np.ndarray], count: int) -> np.ndarray:
    """Rows of input | output | target for the first `count` pairs, with a 2-pixel white gutter."""
    rows = []
    for index in range(min(count, len(outputs))):
        image, target, _ = folder.arrays(index)
        gutter = np.full((image.shape[0], 2, 3), 255, np.uint8)
        rows.append(np.concatenate([image, gutter, outputs[index], gutter, target], axis=1))
        rows.append(np.full((2, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


@dataclass
class TrainOutputs:
    """Where the stage writes: the model, the persisted checkpoint folder, metrics JSON, the loss CSV and (when
    given) the val metrics CSV."""

    model: Path
    checkpoints: Path
    metrics: Path
    losses: Path
    val: Path | None = None


def write_losses_csv(path: Path, history: list[dict[str, float]]) -> None:
    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", *LOSS_TERMS])
        for row in history:
            writer.writerow([int(row["step"]), *(f"{row[name]:.6g}" for name in LOSS_TERMS)])


def write_val_csv(path: Path, evaluations: list[dict[str, float]]) -> None:
    """The val metrics of each evaluation: step, then the metrics in the order they were scored."""
    names = [name for name in evaluations[0] if name != "step"] if evaluations else []
    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", *names])
        for row in evaluations:
            writer.writerow([int(row["step"]), *(f"{row[name]:.6g}" for name in names)])


def data_signature(renderer: Any, val: PairFolder, recipe: str | os.PathLike | None = None) -> str:
    """A cheap identity of the training data for checkpoint matching: the train recipe's bytes (when there is
    a recipe file), the renderer's size and epoch length, and the val pair ids."""
    parts = [str(tuple(renderer.size)), str(renderer.pairs_per_epoch), ",".join(val.ids)]
    if recipe is not None:
        parts.append(hashlib.sha256(Path(recipe).read_bytes()).hexdigest())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def batches(dataset: RenderedPairs, batch_size: int, first_step: int, steps: int, workers: int
            ) -> Iterator[dict[str, Any]]:
    """Batches for steps first_step+1 .. steps: step s gets samples (s-1)*B .. s*B-1, whatever came before.

    The loader gets its own torch.Generator: its worker seeding must not draw from the global RNG, whose
    state a resumed run restores from the checkpoint.
    """
    sampler = range(first_step * batch_size, steps * batch_size)
    return iter(DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                           generator=torch.Generator()))


class Training:
    """One run of the train stage: set up (fresh, or resumed from the newest matching checkpoint), step through
    the remaining steps with logging, validation and checkpoints, then write every output."""

    def __init__(self, settings: TrainSettings, renderer: Any, val: PairFolder, outputs: TrainOutputs,
                 tracking_root: str | os.PathLike, recipe: str | os.PathLike | None = None,
                 keep_checkpoints: int = 1, progress: bool = True):
        if tuple(renderer.size) != tuple(val.size):
            raise InputError(f"{val.root}: val pairs are {val.size[1]}x{val.size[0]}, the train renderer makes "
                             f"{renderer.size[1]}x{renderer.size[0]} (WxH); re-run the synthesize stage")
        self.settings, self.renderer, self.val, self.outputs = settings, renderer, val, outputs
        self.tracking_root, self.progress = tracking_root, progress
        self.started = time.perf_counter()
        self.device = select_device(settings.device)
        self.threads = configure_cpu_threads(settings.threads or None) if self.device.type == "cpu" else None
        torch.backends.cudnn.benchmark = self.device.type == "cuda"
        torch.manual_seed(settings.seed)
        self.trainer = GanTrainer(settings, tuple(renderer.size), self.device)
        self.store = Checkpoints(outputs.checkpoints, keep=keep_checkpoints)
        self.fingerprint = settings.fingerprint(data_signature(renderer, val, recipe))
        self.step, self.history, self.evaluations, self.elapsed_before = 0, [], [], 0.0
        self.pending: list[dict[str, float]] = []
        self.tracker = self._resume_or_start()

    def _resume_or_start(self) -> Tracker:
        """Load the newest matching checkpoint (or clear the folder), then open or reopen the MLflow run."""
        from carremoval.tracking import Tracker, committed_params, describe_run, git_commit, run_name

        state = self.store.latest(self.fingerprint)
        if state is None:
            self.store.reset()
        else:
            self.trainer.load_state_dict(state["trainer"])
            set_rng_state(state["rng"])
            self.step, self.history, self.evaluations = state["step"], state["history"], state["evaluations"]
            self.elapsed_before = state["elapsed"]
            tqdm.write(f"train: resuming from step {self.step} of {self.settings.steps}")
        commit = git_commit()
        vgg = self.trainer.vgg_info
        tags = {"device": self.device.type, "git_commit": commit, "dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
                "vgg_pretrained": str(vgg.pretrained).lower(), "vgg_source": vgg.source,
                "generator_pretrained": "false", "stage": "train"}
        tracker = Tracker(self.tracking_root, run_id=state["run_id"] if state else None, name=run_name(commit),
                          tags=tags)
        tracker.set_tags({**tags, "cpu_threads": self.threads or "", "resumed_from_step": self.step})
        experiment = os.environ.get("DVC_EXP_NAME")
        tracker.set_description(describe_run(self.settings.raw, commit, experiment, committed_params()))
        if not tracker.resumed:
            tracker.log_params({**flatten(self.settings.raw), "train.image_size": list(self.renderer.size),
                                "train.pairs_per_epoch": self.renderer.pairs_per_epoch,
                                "train.val_pairs": len(self.val)})
        self.logged_losses = tracker.last_step("g_total")
        self.logged_evaluations = tracker.last_step("val_hole_l1")
        return tracker

    def run(self) -> dict[str, Any]:
        """Train to the last step and write the outputs; the MLflow run ends FINISHED, KILLED or FAILED."""
        try:
            references = reference_scores(self.val, prefill=self.trainer.generator.prefill)
            if not self.tracker.resumed:
                self.tracker.log_metrics([{"step": 0, **{f"ref_{name}_{key}": value for name, scores in
                                                         references.items() for key, value in scores.items()}}])
            self._train()
            metrics = self._finish(references)
        except KeyboardInterrupt:
            self.tracker.finish("KILLED")
            raise
        except Exception:
            self.tracker.finish("FAILED")
            raise
        return metrics

    def _train(self) -> None:
        settings = self.settings
        bar = tqdm(total=settings.steps, initial=self.step, desc="train", unit="step", disable=not self.progress)
        pairs = RenderedPairs(self.renderer, Augment.from_params(settings.augment), settings.seed)
        for batch in batches(pairs, settings.batch_size, self.step, settings.steps, settings.workers):
            self.step += 1
            lr = self.trainer.set_lr(self.step)
            row = {"step": self.step, **self.trainer.step(batch)}
            if not all(math.isfinite(row[name]) for name in LOSS_TERMS):
                raise FloatingPointError(f"train: a loss became NaN/inf at step {self.step}: {row}")
            self.history.append(row)
            self.pending.append({**row, "lr": lr})
            bar.update(1)
            bar.set_postfix(g_pix=f"{row['g_pix']:.3f}", d=f"{row['d_total']:.3f}")
            last = self.step == settings.steps
            if self.step % settings.log_every == 0 or last:
                self._flush()
            if self.step % settings.eval_every == 0 or last:
                self.evaluations.append({"step": self.step, **self._evaluate()})
            if self.step % settings.checkpoint_every == 0 or last:
                self._checkpoint()
        bar.close()

    def _flush(self) -> None:
        """Send the buffered per-step rows to MLflow, skipping steps a killed attempt already logged."""
        rows = [row for row in self.pending if row["step"] > self.logged_losses]
        if rows:
            self.tracker.log_metrics(rows)
            self.logged_losses = int(rows[-1]["step"])
        self.pending.clear()

    def _evaluate(self) -> dict[str, float]:
        """Val scores now; logged with a sample grid unless a killed attempt already logged this step."""
        outputs = predict(self.trainer.generator, self.val, self.device)
        scores = score_outputs(self.val, outputs)
        if self.step > self.logged_evaluations:
            self.tracker.log_metrics([{"step": self.step, **{f"val_{key}": value for key, value in scores.items()}}])
            self.tracker.log_samples(sample_grid(self.val, outputs, self.settings.samples), self.step)
            self.logged_evaluations = self.step
        return scores

    def _seconds(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def _checkpoint(self) -> None:
        self.store.save({"step": self.step, "trainer": self.trainer.state_dict(), "rng": rng_state(),
                         "history": self.history, "evaluations": self.evaluations, "elapsed": self._seconds(),
                         "run_id": self.tracker.run_id, "fingerprint": self.fingerprint}, self.step)

    def _finish(self, references: dict[str, dict[str, float]]) -> dict[str, Any]:
        self._flush()
        if not self.evaluations or self.evaluations[-1]["step"] != self.step:
            self.evaluations.append({"step": self.step, **self._evaluate()})
        scores = {key: value for key, value in self.evaluations[-1].items() if key != "step"}
        metrics = summary(self.settings, self.step, self._seconds(), scores, references, self.trainer.vgg_info,
                          self.device, len(self.val))
        save_generator(self.outputs.model, self.trainer.generator, self.trainer.config)
        write_losses_csv(self.outputs.losses, self.history)
        if self.outputs.val is not None:
            write_val_csv(self.outputs.val, self.evaluations)
        write_json(self.outputs.metrics, metrics)
        self.tracker.log_generator(self.trainer.generator.eval(), tuple(self.renderer.size))
        self.tracker.finish("FINISHED")
        self.store.reset()
        return metrics


def run_training(settings: TrainSettings, renderer: Any, val: PairFolder, outputs: TrainOutputs,
                 tracking_root: str | os.PathLike, recipe: str | os.PathLike | None = None,
                 keep_checkpoints: int = 1, progress: bool = True) -> dict[str, Any]:
    """Train (resuming from the newest matching checkpoint), then write the model, metrics and loss CSV."""
    return Training(settings, renderer, val, outputs, tracking_root, recipe, keep_checkpoints, progress).run()


def summary(settings: TrainSettings, steps: int, seconds: float, scores: dict[str, float],
            references: dict[str, dict[str, float]], vgg: VggInfo, device: torch.device, pairs: int
            ) -> dict[str, Any]:
    """metrics/train.json: the final val scores, the references' scores, and how the run was made."""
    return {
        "steps": steps,
        "seconds": round(seconds, 1),
        "images_per_second": round(steps * settings.batch_size / max(seconds, 1e-9), 2),
        "device": device.type,
        "val_pairs": pairs,
        "val": {key: round(value, 5) for key, value in scores.items()},
        "reference": {name: {key: round(value, 5) for key, value in values.items()}
                      for name, values in references.items()},
        **{f"beats_{name}_hole_l1": scores["hole_l1"] < values["hole_l1"] for name, values in references.items()},
        "vgg_pretrained": vgg.pretrained,
        "vgg_source": vgg.source,
    }
