"""Training throughput at the default size (params.yaml): images/s of the generator's forward + backward alone,
of the full GAN step (D update + G update with every loss), and of that step fed by the real pair renderer.

The generator alone is the baseline: the ratio says what the discriminator, the losses and the data cost. The
check projects the default `train` stage's wall time from the measured full-step rate.
"""
from __future__ import annotations

import torch

from carremoval.bench import Check, Row, Section, median_seconds
from carremoval.bench.synthesis import shared_sources
from carremoval.data import Augment, RenderedPairs
from carremoval.device import configure_cpu_threads, select_device
from carremoval.params import load_params
from carremoval.synthesis import PairRenderer
from carremoval.synthesis.export import SynthesisSettings
from carremoval.training import GanTrainer, TrainSettings, batches

BUDGET_SECONDS = 600  # the default run must finish within 10 minutes on 2 cores


def random_batch(batch_size: int, size: tuple[int, int], device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    height, width = size
    mask = torch.zeros(batch_size, 1, height, width)
    mask[:, :, height // 2: height * 7 // 8, width // 4: width * 3 // 4] = 1.0
    return {"input": (torch.rand(batch_size, 3, height, width, generator=generator) * 2 - 1).to(device),
            "target": (torch.rand(batch_size, 3, height, width, generator=generator) * 2 - 1).to(device),
            "mask": mask.to(device)}


def generator_alone(trainer: GanTrainer, batch: dict[str, torch.Tensor]) -> None:
    """The baseline: generator forward, pixel loss, backward, Adam step."""
    trainer.generator.train()
    output = trainer.generator(batch["input"], batch["mask"])
    loss = trainer.pixel(output, batch["target"], batch["mask"])
    trainer.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    trainer.opt_g.step()


def synchronised(device: torch.device, work):
    def timed() -> None:
        work()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return timed


def run(quick: bool) -> Section:
    params = load_params()
    settings = TrainSettings.from_params(params)
    size = tuple(SynthesisSettings.from_params(params.get("synthesize")).size)
    device = select_device(settings.device)
    threads = configure_cpu_threads(settings.threads or None) if device.type == "cpu" else 0
    repeats = 3 if quick else 7
    torch.manual_seed(settings.seed)
    trainer = GanTrainer(settings, size, device)
    batch = random_batch(settings.batch_size, size, device)
    label = f"training {size[0]}x{size[1]}, batch {settings.batch_size}, {settings.generator['kind']}"
    note = f"median of {repeats}, {device.type}" + (f", {threads} threads" if threads else "")
    section = Section(name="training")

    alone = median_seconds(synchronised(device, lambda: generator_alone(trainer, batch)), repeats=repeats)
    full = median_seconds(synchronised(device, lambda: trainer.step(batch)), repeats=repeats)
    backgrounds, cutouts = shared_sources()
    renderer = PairRenderer(backgrounds, cutouts, size=size, seed=settings.seed)
    renderer.preload()
    pairs = RenderedPairs(renderer, Augment.from_params(settings.augment), settings.seed)
    loader = batches(pairs, settings.batch_size, 0, 10_000, workers=0)
    fed = median_seconds(synchronised(device, lambda: trainer.step(next(loader))), repeats=repeats)
    images = settings.batch_size
    section.rows += [
        Row(f"{label}: generator fwd+bwd (baseline)", images / alone, "images/s", note),
        Row(f"{label}: full GAN step (D + G)", images / full, "images/s", f"{note}; x{alone / full:.2f} of baseline"),
        Row(f"{label}: full step + rendering", images / fed, "images/s", f"{note}; real pairs from ../shared/data"),
    ]
    projected = settings.steps * fed
    section.rows.append(Row(f"training: default run ({settings.steps} steps) projected", projected, "s",
                            "steps x (full step + rendering); validation and MLflow add a little"))
    section.checks.append(Check(f"default train stage within {BUDGET_SECONDS // 60} minutes", projected < BUDGET_SECONDS,
                                f"{projected:.0f} s projected from the measured step time"))
    return section
