"""Train the Fashion-MNIST ensemble members and write the ensemble that the real runner loads.

    python experiments/train_fmnist.py                          # CPU configuration: the shipped ensemble
    python experiments/train_fmnist.py --config gpu --device cuda --out runs/train-gpu

Data: the Debian package ``dataset-fashion-mnist`` (``apt-get install -y dataset-fashion-mnist``).
Recipe (the reference ensemble's, ``simulator/data/README.md``): `FashionCNN` members, SGD with Nesterov momentum
0.9, weight decay 5e-4, one-cycle learning rate peaking at 0.1, label smoothing 0.05, random horizontal flip and
±2 px shift, batch 128. Configurations:

- ``cpu``: four width-8 members (seeds 0-3, 3 epochs), a width-16 (seed 100, 3 epochs) and a width-32 member
  (seed 101, 2 epochs); about 15 minutes on a quiet 2-core CPU. Each member is saved to the work folder when done
  and skipped on a re-run, so the run can be split (``--members 0,1``).
- ``gpu``: the reference ensemble's shape (six width-32 members, a width-8 and a width-64 one, 8 epochs).

Outputs (in ``--out``; the CPU configuration's default is ``simulator/data``, where the runner finds them):
``fmnist_{config}_members.npz`` (weights), ``fmnist_{config}_samples.npz`` (the first ``--samples`` test images),
``fmnist_{config}_logits_test.npz`` (the logit cache of the members on those images, ``simulator.logits`` format,
with ``model_names``) and ``fmnist_{config}.md`` (provenance and accuracy). The cache is computed by the runner's
own stage (`simulator.runner.compute.EagerStage`: eager, batch 1, eval mode, float32, ``--runner-threads``
threads), so that a live run's logits equal the cache's and its decisions equal the simulator's replay.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.errors import FlexsimError, require, script_exit  # noqa: E402
from simulator.io import atomic_paths, check_output_dir, naming  # noqa: E402
from simulator.logits import LogitCache, save_cache  # noqa: E402
from simulator.models.fmnist import FashionCNN, model_name  # noqa: E402
from simulator.profiler.targets import check_device  # noqa: E402
from simulator.runner import bundle  # noqa: E402
from simulator.runner.compute import EagerStage, member_modules, normalized_images, set_threads, stage_logits  # noqa: E402
from simulator.runner.fmnist_data import PIXEL_MEAN, PIXEL_STD, load_split  # noqa: E402


@dataclass(frozen=True)
class Member:
    """One member to train."""

    width: int
    seed: int
    epochs: int


CONFIGS = {
    "cpu": (Member(8, 0, 3), Member(8, 1, 3), Member(8, 2, 3), Member(8, 3, 3), Member(16, 100, 3),
            Member(32, 101, 2)),
    "gpu": tuple(Member(32, s, 8) for s in range(6)) + (Member(8, 100, 8), Member(64, 101, 8)),
}
#: Images in Fashion-MNIST's test split: the most --samples can serve.
TEST_IMAGES = 10_000
BATCH = 128
MAX_LR = 0.1
SHIFT_PX = 2


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to `SHIFT_PX` pixels (zero padding), per image."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (SHIFT_PX,) * 4)
    dy, dx = (torch.randint(0, 2 * SHIFT_PX + 1, (2, n), generator=gen))
    rows = (torch.arange(h)[None, :] + dy[:, None])[:, :, None]
    cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


def train_member(member: Member, x: torch.Tensor, y: torch.Tensor, device: str) -> dict:
    """Train one member; return its state dict as NumPy arrays."""
    torch.manual_seed(member.seed)
    gen = torch.Generator().manual_seed(member.seed)
    model = FashionCNN(member.width).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=MAX_LR, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = (x.shape[0] // BATCH) * member.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=steps)
    for epoch in range(member.epochs):
        t0, order = time.perf_counter(), torch.randperm(x.shape[0], generator=gen)
        model.train()
        for i in range(x.shape[0] // BATCH):
            idx = order[i * BATCH:(i + 1) * BATCH]
            loss = F.cross_entropy(model(augment(x[idx], gen).to(device)), y[idx].to(device), label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"  w{member.width} seed {member.seed}: epoch {epoch + 1}/{member.epochs} loss {loss.item():.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def accuracy(model, x: torch.Tensor, y: torch.Tensor, device: str) -> float:
    """Accuracy of `model` on (x, y), evaluated in batches of 1000."""
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + 1000].to(device)).argmax(1).cpu() for i in range(0, x.shape[0], 1000)])
    return float((pred == y).float().mean())


def trained_states(members, work: Path, x, y, device: str, only) -> list:
    """Train (or reuse from `work`) each member; return the state dicts."""
    work.mkdir(parents=True, exist_ok=True)
    states = []
    for i, member in enumerate(members):
        path = work / f"member-{i}-w{member.width}-s{member.seed}-e{member.epochs}.npz"
        if not path.exists():
            if only is not None and i not in only:
                continue
            print(f"member {i}: training width {member.width}, seed {member.seed}, {member.epochs} epochs", flush=True)
            bundle._write_npz(path, train_member(member, x, y, device))
        states.append(_member_file(path))
    return states


def _member_file(path: Path) -> dict:
    """The state dict in a trained member's file; FlexsimError where it is not one (remove it to train again)."""
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise FlexsimError(f"trained member {path} cannot be read ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); remove it to train it again") from None


def write_ensemble(config: str, members, states, out: Path, n_samples: int, device: str, threads: int) -> None:
    """Write the members, the served samples, the logit cache and the provenance note into `out`."""
    x_test, y_test = load_split("test")
    require(n_samples <= len(y_test), f"invalid --samples = {n_samples}: the test split has {len(y_test)} images")
    trained = bundle.TrainedMembers(
        widths=np.array([m.width for m in members]), seeds=np.array([m.seed for m in members]),
        model_names=tuple(model_name(m.width) for m in members), pixel_mean=PIXEL_MEAN, pixel_std=PIXEL_STD,
        test_accuracy=np.zeros(len(members)), states=tuple(states))
    modules = member_modules(trained, device)
    full = bundle.SampleSet(images=x_test, labels=y_test, test_index=np.arange(len(y_test)))
    x_full = normalized_images(full, PIXEL_MEAN, PIXEL_STD, device)
    acc = np.array([accuracy(m, x_full, torch.from_numpy(y_test), device) for m in modules])
    trained = bundle.TrainedMembers(**{**trained.__dict__, "test_accuracy": acc})
    served = bundle.SampleSet(images=x_test[:n_samples], labels=y_test[:n_samples], test_index=np.arange(n_samples))
    set_threads(threads)
    x_served = normalized_images(served, PIXEL_MEAN, PIXEL_STD, device)
    logits = np.stack([stage_logits(EagerStage(m, x_served), n_samples, 10) for m in modules])
    names = [f"fmnist_{config}_{part}.npz" for part in ("members", "samples", "logits_test")] + [f"fmnist_{config}.md"]
    with naming(out):
        out.mkdir(parents=True, exist_ok=True)
    with atomic_paths([out / name for name in names]) as (members_tmp, samples_tmp, cache_tmp, note_tmp):
        bundle.save_members(members_tmp, trained)        # the four files replace the earlier ones together, or none
        bundle.save_samples(samples_tmp, served)
        save_cache(cache_tmp, LogitCache(logits=logits, labels=served.labels, model_names=trained.model_names))
        Path(note_tmp).write_text(provenance(config, members, acc, logits, served, device, threads))
    print(f"wrote {out}/fmnist_{config}_{{members,samples,logits_test}}.npz and fmnist_{config}.md")


def provenance(config, members, acc, logits, served, device, threads) -> str:
    """The provenance note written beside the ensemble."""
    from simulator.signals import combine, softmax

    rows = "\n".join(f"| {i} | {m.width} | {m.seed} | {m.epochs} | {model_name(m.width)} | {a:.4f} | "
                     f"{(logits[i].argmax(1) == served.labels).mean():.3f} |" for i, (m, a) in enumerate(zip(members, acc)))
    homogeneous = [i for i, m in enumerate(members) if m.width == members[0].width]
    mean_pred = combine(softmax(logits[homogeneous]), "mean")[-1].argmax(1)
    return f"""# Fashion-MNIST ensemble `{config}` (trained for the real runner)

Built by `experiments/train_fmnist.py --config {config}` on {datetime.date.today()} ({platform.machine()},
torch {torch.__version__}, training device {device}) from Debian's `dataset-fashion-mnist`.
Architecture `simulator.models.fmnist.FashionCNN`; SGD + Nesterov, one-cycle LR 0.1, label smoothing 0.05, flip and
±2 px shift, batch {BATCH}. Input: `(pixel / 255 - {PIXEL_MEAN}) / {PIXEL_STD}`.

| member | width | seed | epochs | model name | test accuracy (10000) | accuracy on the {len(served.labels)} served samples |
|---|---|---|---|---|---|---|
{rows}

Mean-softmax ensemble of members {homogeneous[0]}-{homogeneous[-1]} on the served samples:
{(mean_pred == served.labels).mean():.3f}.

- `fmnist_{config}_members.npz`: weights (see `simulator/runner/bundle.py`).
- `fmnist_{config}_samples.npz`: test images 0-{len(served.labels) - 1} (uint8) and labels, served by the runner.
- `fmnist_{config}_logits_test.npz`: logits `[{len(members)}, {len(served.labels)}, 10]` float32 of each member on those
  images, computed by the runner's eager batch-1 stage on {device} with {threads} intra-op thread(s), in eval mode.
"""


def member_indices(text: str, n_members: int) -> set[int]:
    """``"0,1"`` -> ``{0, 1}``; FlexsimError naming a part that is not a member index."""
    try:
        only = {int(i) for i in text.split(",")}
    except ValueError:
        raise FlexsimError(f"invalid --members = {text!r}: comma-separated member indices") from None
    bad = sorted(i for i in only if not 0 <= i < n_members)
    require(not bad, f"invalid --members = {text!r}: the configuration has members 0 to {n_members - 1}")
    return only


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    parser.add_argument("--device", default="cpu", help="training and cache device (cpu, cuda)")
    parser.add_argument("--out", default=None, help="output folder (default: simulator/data for cpu, "
                        "runs/train-CONFIG otherwise)")
    parser.add_argument("--work", default=None, help="folder of the trained members (default: "
                        "runs/train-CONFIG/members)")
    parser.add_argument("--members", default=None, help="train only these members (comma-separated indices); "
                        "the ensemble is written once every member is trained")
    parser.add_argument("--samples", type=int, default=1000, help="test images shipped for the runner (default 1000)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for training (default 2)")
    parser.add_argument("--runner-threads", type=int, default=1, help="intra-op threads of the runner (default 1)")
    args = parser.parse_args(argv)
    members = CONFIGS[args.config]
    out = Path(check_output_dir(args.out, "--out")) if args.out is not None else (
        ROOT / "simulator" / "data" if args.config == "cpu" else ROOT / "runs" / f"train-{args.config}")
    work = Path(check_output_dir(args.work, "--work")) if args.work is not None else (
        ROOT / "runs" / f"train-{args.config}" / "members")
    only = None if args.members is None else member_indices(args.members, len(members))
    require(args.runner_threads >= 1, f"invalid --runner-threads = {args.runner_threads}: must be >= 1")
    require(1 <= args.samples <= TEST_IMAGES, f"invalid --samples = {args.samples}: must be 1 to {TEST_IMAGES} "
            "(the test split's images)")
    check_device(torch, args.device)
    check_output_dir(out, "--out")                          # before minutes of training, not after them
    check_output_dir(work, "--work")
    set_threads(args.threads)
    x, y = load_split("train")
    x = normalized_images(bundle.SampleSet(images=x, labels=y, test_index=np.arange(len(y))), PIXEL_MEAN, PIXEL_STD,
                          "cpu")
    states = trained_states(members, work, x, torch.from_numpy(y), args.device, only)
    if len(states) < len(members):
        print(f"{len(states)} of {len(members)} members trained; run again for the rest")
        return 0
    write_ensemble(args.config, members, states, out, args.samples, args.device, args.runner_threads)
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
