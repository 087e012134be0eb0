"""Train a compact FER2013 expression network on CPU (or a GPU: ``--device cuda``).

    python -m tools.train.train --out runs/train/NAME [--head dan|plain] [--arch r3] [--epochs 30] [--resume]

Reads ``<data-dir>/train.npz`` (originals only; a seeded stratified ``--holdout`` fraction is kept out for
temperature calibration) and ``<data-dir>/validation.npz`` (FER2013 PublicTest, 3,589 originals). One log line per
epoch: loss, train accuracy (on augmented batches), hold-out and PublicTest accuracy, learning rate, seconds.
``<out>/last.pt`` is written after every epoch; ``--resume`` continues from it and gives the same result as an
uninterrupted run (every epoch's shuffling, augmentation and dropout are seeded from ``(seed, epoch)``).
The final weights are those of the last epoch — nothing is selected on PublicTest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import AugmentConfig, augment, epoch_order, load_npz, stratified_holdout, to_tensor
from .nets import ARCHS, AffinityLoss, PartitionLoss, build, count_params

log = logging.getLogger("tools.train")

DEFAULT_DATA = Path("..") / "shared" / "data" / "fer2013"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.train.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                   help="folder with train.npz and validation.npz (default: ../shared/data/fer2013)")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and history")
    p.add_argument("--arch", default="r3", choices=sorted(ARCHS))
    p.add_argument("--head", default="dan", choices=("dan", "plain"))
    p.add_argument("--num-head", type=int, default=4, help="DAN attention heads")
    p.add_argument("--fusion", default="mean", choices=("mean", "logsoftmax"),
                   help="DAN head fusion: mean of the heads, or DAN's log-softmax across heads then sum")
    p.add_argument("--sa-reduce", default="sum", choices=("sum", "mean"),
                   help="DAN spatial map: sum over channels (DAN) or mean")
    p.add_argument("--partition-eps", type=float, default=0.0, help="added to the head variance (0 = DAN)")
    p.add_argument("--affinity", type=float, default=1.0, help="DAN affinity-loss weight")
    p.add_argument("--partition", type=float, default=1.0, help="DAN partition-loss weight")
    p.add_argument("--dropout", type=float, default=0.3, help="plain head only")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (checkpointed, resumable) after this many epochs of the schedule; 0 = run all")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05, help="OneCycle peak learning rate (SGD, Nesterov)")
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--warmup", type=float, default=0.15, help="OneCycle warm-up fraction")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--disgust-repeat", type=int, default=3, help="disgust images per epoch = this × originals")
    p.add_argument("--holdout", type=float, default=0.1, help="stratified fraction of Training kept for calibration")
    p.add_argument("--seed", type=int, default=20260207, help="initialisation, shuffling, augmentation, dropout")
    p.add_argument("--holdout-seed", type=int, default=None,
                   help="seed of the calibration hold-out (default: --seed); runs meant for one ensemble share it")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu",
                   help="torch device (cpu, cuda); shuffling and the augmentation's random numbers are drawn on the "
                        "CPU with the same seeds, so a GPU run sees the same batches")
    p.add_argument("--train-subset", type=float, default=1.0,
                   help="use this seeded fraction of the training split (quick experiments)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    return p.parse_args(argv)


def run_flags(argv: list[str]) -> list[str]:
    """``argv`` without ``--resume`` and ``--stop-after N``: the command that gives this run's weights in one go."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--stop-after":
            skip = True
        elif a != "--resume" and not a.startswith("--stop-after="):
            out.append(a)
    return out


def holdout_seed(args: dict) -> int:
    """The calibration hold-out's seed of a run (``args`` as parsed or as stored in a checkpoint)."""
    return args["seed"] if args.get("holdout_seed") is None else args["holdout_seed"]


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """Logits (N, C) for uint8 images (N, 48, 48), on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(to_tensor(images[i:i + batch]).to(device)) for i in range(0, len(images), batch)]
    return torch.cat(out).cpu().numpy()


def param_groups(model: torch.nn.Module, extra: list[torch.nn.Parameter], wd: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay + extra, "weight_decay": 0.0}]


def _cpu(state: dict) -> dict:
    """A state dict with every tensor on the CPU (checkpoints load anywhere)."""
    return {k: v.cpu() if torch.is_tensor(v) else v for k, v in state.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout),
                                  logging.FileHandler(args.out / "train.log")])
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    command = "python -m tools.train.train " + " ".join(shlex.quote(a) for a in run_flags(
        sys.argv[1:] if argv is None else argv))

    train_all = load_npz(args.data_dir / "train.npz")
    test = load_npz(args.data_dir / "validation.npz")
    tr_idx, ho_idx = stratified_holdout(train_all.labels, args.holdout, holdout_seed(vars(args)))
    if args.train_subset < 1.0:
        keep, _ = stratified_holdout(train_all.labels[tr_idx], 1 - args.train_subset, args.seed + 1)
        tr_idx = tr_idx[keep]
    x_tr, y_tr = train_all.images[tr_idx], train_all.labels[tr_idx]
    x_ho, y_ho = train_all.images[ho_idx], train_all.labels[ho_idx]
    log.info("train %d, hold-out %d (seed %d), PublicTest %d originals; per-class train %s",
             len(y_tr), len(y_ho), holdout_seed(vars(args)), len(test), np.bincount(y_tr, minlength=7).tolist())

    model = build(args.arch, args.head, num_head=args.num_head, dropout=args.dropout, sa_reduce=args.sa_reduce,
                  fusion=args.fusion)
    aux: list[torch.nn.Parameter] = []
    affinity = partition = None
    if args.head == "dan":
        affinity = AffinityLoss(7, model.features.out_channels)
        partition = PartitionLoss(args.partition_eps)
    model.to(device)
    if affinity is not None:
        affinity.to(device)
        aux = list(affinity.parameters())
    log.info("model %s/%s: %d parameters (+%d affinity centres)", args.arch, args.head, count_params(model),
             sum(p.numel() for p in aux))
    opt = torch.optim.SGD(param_groups(model, aux, args.wd), lr=args.lr, momentum=0.9, nesterov=True)
    steps_per_epoch = len(epoch_order(y_tr, args.disgust_repeat, args.seed, 0)) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=args.warmup,
                                                div_factor=20, final_div_factor=200)
    history: list[dict] = []
    start = 0
    ckpt_path = args.out / "last.pt"
    if args.resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}; drop --resume to start afresh")
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck["args"]["arch"] != args.arch or ck["args"]["head"] != args.head or ck["args"]["epochs"] != args.epochs:
            raise ValueError(f"{ckpt_path} was trained with arch/head/epochs "
                             f"{ck['args']['arch']}/{ck['args']['head']}/{ck['args']['epochs']}; pass the same flags")
        model.load_state_dict(ck["model"])
        if affinity is not None:
            affinity.load_state_dict(ck["affinity"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        history, start = ck["history"], ck["epoch"]
        log.info("resumed from %s after epoch %d", ckpt_path, start)

    cfg = AugmentConfig()
    ce = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    last = args.epochs if not args.stop_after else min(args.epochs, start + args.stop_after)
    for epoch in range(start, args.epochs):
        if epoch >= last:
            log.info("stopping after epoch %d as asked (--stop-after); continue with --resume", epoch)
            break
        t0 = time.perf_counter()
        model.train()
        torch.manual_seed(args.seed * 1000 + epoch)               # dropout
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch + 1)   # augmentation
        order = epoch_order(y_tr, args.disgust_repeat, args.seed, epoch)
        tot_loss = tot_aux = correct = seen = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x = augment(to_tensor(x_tr[idx]).to(device, non_blocking=True), cfg, gen)
            y = torch.from_numpy(y_tr[idx]).to(device, non_blocking=True)
            out, feat, heads = model.forward_train(x)
            loss = ce(out, y)
            aux_loss = torch.zeros((), device=device)
            if affinity is not None:
                aux_loss = args.affinity * affinity(feat, y) + args.partition * partition(heads)
            opt.zero_grad(set_to_none=True)
            (loss + aux_loss).backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(y)
            tot_aux += aux_loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
        train_s = time.perf_counter() - t0
        ho_acc = float((predict(model, x_ho).argmax(1) == y_ho).mean())
        te_acc = float((predict(model, test.images).argmax(1) == test.labels).mean())
        secs = time.perf_counter() - t0
        rec = {"epoch": epoch + 1, "loss": tot_loss / seen, "aux_loss": tot_aux / seen, "train_acc": correct / seen,
               "holdout_acc": ho_acc, "val_acc": te_acc, "lr": opt.param_groups[0]["lr"], "train_s": train_s,
               "seconds": secs, "load1": os.getloadavg()[0]}
        history.append(rec)
        log.info("epoch %3d/%d  loss %.4f  aux %.4f  train_acc %.4f  holdout_acc %.4f  val_acc %.4f  lr %.5f  %.0fs"
                 "  (load %.1f)", epoch + 1, args.epochs, rec["loss"], rec["aux_loss"], rec["train_acc"], ho_acc,
                 te_acc, rec["lr"], secs, rec["load1"])
        ck = {"model": _cpu(model.state_dict()), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
              "affinity": _cpu(affinity.state_dict()) if affinity is not None else None,
              "epoch": epoch + 1, "history": history, "args": {k: str(v) if isinstance(v, Path) else v
                                                              for k, v in vars(args).items()},
              "command": command}
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(ck, tmp)
        os.replace(tmp, ckpt_path)
        (args.out / "history.json").write_text(json.dumps(history, indent=1))
    if history and history[-1]["epoch"] == args.epochs:
        total = sum(h["seconds"] for h in history)
        log.info("done: %d epochs, %.1f min of epoch time; final PublicTest %.4f, hold-out %.4f",
                 args.epochs, total / 60, history[-1]["val_acc"], history[-1]["holdout_acc"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
