"""Train a compact expression network on FER2013 or FER+ on CPU (or a GPU: ``--device cuda``).

    python -m tools.train.train --out runs/train/NAME [--head dan|plain] [--arch r3] [--epochs 30] [--resume]
    python -m tools.train.train --dataset ferplus --out runs/NAME --head plain --arch r3d --epochs 40 \
        [--teacher runs/T1 --teacher runs/T2]          # FER+ soft targets, webcam augmentation, mixup/CutMix, KD

``--dataset ferplus`` (``../shared/data/ferplus``): soft targets from the 10 crowd votes (unknown/NF dropped),
8 classes (``--classes 7`` drops contempt), a seeded 10 % of FER+ train held out (stratified by majority label),
webcam-like augmentation (:class:`tools.train.data.WebcamConfig`), mixup/CutMix (``--mix-prob``), and optionally
distillation from trained runs (``--teacher``, repeatable: the mean of their logits on the same augmented, mixed
batch; the target is ``(1 - distill) · votes + distill · teacher``). Accuracies in the log are FER+ majority
accuracy (the paper's rule) on the hold-out and on FER+ validation (the latter for the curve only).

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

from .data import (AugmentConfig, WebcamConfig, augment, augment_webcam, epoch_order, equalize_images,
                   equalize_tensor, load_npz, mix_batch, stratified_holdout, to_tensor)
from .data import LABELS
from .ferplus import DEFAULT_FERPLUS, holdout_split, labels_for, load_ferplus
from .reference import fer2013_labels_for
from .nets import ARCHS, AffinityLoss, HeadMix, PartitionLoss, build, count_params

log = logging.getLogger("tools.train")

DEFAULT_DATA = Path("..") / "shared" / "data" / "fer2013"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.train.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fer2013", choices=("fer2013", "ferplus"),
                   help="fer2013: FER2013's own labels; ferplus: FER+ vote distributions (soft targets), raw pixels")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder with train.npz and validation.npz (default: ../shared/data/<dataset>)")
    p.add_argument("--classes", type=int, default=8, choices=(7, 8), help="ferplus: 8 (with contempt) or 7")
    p.add_argument("--augment", default="auto", choices=("auto", "basic", "webcam"),
                   help="basic: flip/affine/brightness/contrast/erasing; webcam: WebcamConfig (auto: webcam for "
                        "ferplus, basic for fer2013)")
    p.add_argument("--mix-prob", type=float, default=0.0,
                   help="probability that a batch is mixed (half mixup, half CutMix); soft-target path")
    p.add_argument("--mixup-alpha", type=float, default=0.4)
    p.add_argument("--cutmix-alpha", type=float, default=1.0)
    p.add_argument("--aux-fer2013", type=float, default=0.0,
                   help="ferplus: weight of a second head trained on FER2013's own labels of the same faces (matched "
                        "by tools.train.ferplus.fer2013_labels_for); 0 = no second head")
    p.add_argument("--fer2013-dir", type=Path, default=DEFAULT_DATA,
                   help="folder with FER2013's train.npz (for --aux-fer2013)")
    p.add_argument("--teacher", type=Path, action="append", default=[],
                   help="a trained run folder (last.pt) to distil from; repeat for an ensemble (mean logits)")
    p.add_argument("--init", type=Path, default=None,
                   help="start from this run's last.pt weights (same arch and classes), e.g. to fine-tune a network "
                        "by distillation from an ensemble it belongs to")
    p.add_argument("--freeze-bn", action="store_true",
                   help="keep every BatchNorm's statistics fixed while training (fine-tuning a network rebuilt by "
                        "tools.train.from_onnx, whose BatchNorms hold folded weights)")
    p.add_argument("--train-only", action="append", default=[], metavar="PREFIX",
                   help="train only the parameters whose names start with PREFIX (repeat), the rest stay as --init "
                        "left them: 'fc' fits a new head on fixed features, 'features.body.6' adds the last block")
    p.add_argument("--distill", type=float, default=0.5, help="weight of the teacher's distribution in the target")
    p.add_argument("--distill-temp", type=float, default=1.0, help="distillation temperature")
    p.add_argument("--memory-format", default="auto", choices=("auto", "channels_last", "contiguous"),
                   help="channels_last is ~1.5x faster on CPU here (auto: channels_last for ferplus)")
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
    p.add_argument("--equalize", action="store_true",
                   help="histogram-equalise every face (training: after augmentation); the card says input.equalize")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (checkpointed, resumable) after this many epochs of the schedule; 0 = run all")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05, help="OneCycle peak learning rate (SGD, Nesterov)")
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--warmup", type=float, default=0.15, help="OneCycle warm-up fraction")
    p.add_argument("--label-smoothing", type=float, default=None,
                   help="default 0.1 for fer2013's hard labels, 0 for ferplus's vote distributions")
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


def run_images(args: dict, images: np.ndarray) -> np.ndarray:
    """Images (N, 48, 48) as a run's network saw them in training: equalised for an ``--equalize`` run."""
    return equalize_images(images) if args.get("equalize", False) else images


def param_groups(model: torch.nn.Module, extra: list[torch.nn.Parameter], wd: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay + extra, "weight_decay": 0.0}]


def _cpu(state: dict) -> dict:
    """A state dict with every tensor on the CPU (checkpoints load anywhere)."""
    return {k: v.cpu() if torch.is_tensor(v) else v for k, v in state.items()}


def _plain(v):
    """Checkpoint-safe argument values (paths as strings)."""
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the dataset-dependent defaults (data folder, label smoothing, augmentation, memory format)."""
    ferplus = args.dataset == "ferplus"
    if args.data_dir is None:
        args.data_dir = DEFAULT_FERPLUS if ferplus else DEFAULT_DATA
    if args.label_smoothing is None:
        args.label_smoothing = 0.0 if ferplus else 0.1
    if args.augment == "auto":
        args.augment = "webcam" if ferplus else "basic"
    if args.memory_format == "auto":
        args.memory_format = "channels_last" if ferplus else "contiguous"
    if not ferplus:
        args.classes = 7
    return args


def aux_classes(args: dict) -> int:
    """Outputs of a run's auxiliary FER2013-label head (0 without one), after its main outputs."""
    return 7 if args.get("aux_fer2013", 0.0) > 0 else 0


def num_classes(args: dict) -> int:
    """Output classes of a run (``args`` as parsed or as stored in a checkpoint; older runs are FER2013, 7)."""
    return int(args.get("classes", 7)) if args.get("dataset", "fer2013") == "ferplus" else 7


def run_labels(args: dict) -> tuple[str, ...]:
    """The label names of a run's outputs, in order."""
    return labels_for(num_classes(args)) if args.get("dataset", "fer2013") == "ferplus" else LABELS


def load_run(run: Path, aux_mix: float = 0.0) -> tuple[torch.nn.Module, dict]:
    """The last checkpoint of a run folder as an eval-mode network with the run's classes as outputs, and the
    checkpoint. A run with an auxiliary FER2013 head gives its FER+ logits, mixed with the FER2013 head's
    probabilities by ``aux_mix`` (:class:`tools.train.nets.HeadMix`)."""
    ck_path = Path(run) / "last.pt"
    if not ck_path.is_file():
        raise FileNotFoundError(f"no checkpoint {ck_path}: train first (python -m tools.train.train --out {run})")
    ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    a = ck["args"]
    if ck["epoch"] != a["epochs"]:
        print(f"warning: {ck_path} stopped after epoch {ck['epoch']} of {a['epochs']}", file=sys.stderr)
    model = build(a["arch"], a["head"], num_classes=num_classes(a) + aux_classes(a), num_head=a["num_head"],
                  dropout=a["dropout"], sa_reduce=a.get("sa_reduce", "sum"), fusion=a.get("fusion", "mean"))
    model.load_state_dict(ck["model"])
    if aux_classes(a):
        model = HeadMix(model, num_classes(a), aux_mix)
    elif aux_mix:
        raise ValueError(f"{run} has no FER2013 head to mix (trained without --aux-fer2013)")
    return model.eval(), ck


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def majority_accuracy(logits: np.ndarray, majority: np.ndarray) -> float:
    """FER+ majority accuracy: faces with a majority label (>= 0) only; a label the model lacks is never right."""
    ok = majority >= 0
    return float((logits[ok].argmax(1) == majority[ok]).mean())


def main(argv: list[str] | None = None) -> int:
    args = resolve_defaults(parse_args(argv))
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
    ferplus = args.dataset == "ferplus"
    n_cls = num_classes(vars(args))
    soft = ferplus or args.mix_prob > 0 or bool(args.teacher)     # soft-target path (the FER2013 recipe is not)

    if ferplus:
        train_all = load_ferplus(args.data_dir / "train.npz")
        val = load_ferplus(args.data_dir / "validation.npz")
        tr_idx, ho_idx = holdout_split(train_all, args.holdout, holdout_seed(vars(args)))
        targets_all = train_all.targets(labels_for(n_cls))
        tr_idx = tr_idx[targets_all[tr_idx].sum(axis=1) > 0]          # a face needs a vote for a class
        if args.train_subset < 1.0:
            keep, _ = stratified_holdout(targets_all[tr_idx].argmax(1), 1 - args.train_subset, args.seed + 1)
            tr_idx = tr_idx[keep]
        x_tr, t_tr = train_all.images[tr_idx], targets_all[tr_idx]
        y_tr = t_tr.argmax(axis=1)
        if args.aux_fer2013 > 0:
            lab13 = fer2013_labels_for(train_all, args.fer2013_dir / "train.npz")[tr_idx]
            votes7 = t_tr[:, :7] / np.maximum(t_tr[:, :7].sum(axis=1, keepdims=True), 1e-6)
            ls = 0.1 if args.label_smoothing == 0 else args.label_smoothing
            onehot = np.eye(7, dtype=np.float32)[np.maximum(lab13, 0)] * (1 - ls) + ls / 7
            aux_t = np.where((lab13 >= 0)[:, None], onehot, votes7).astype(np.float32)
            t_tr = np.concatenate([t_tr, aux_t], axis=1)
            log.info("FER2013 head (weight %.2f): %d of %d train faces matched to a FER2013 label (the rest: their "
                     "FER+ votes); FER2013 label = FER+ top vote on %.1f %%", args.aux_fer2013, int((lab13 >= 0).sum()),
                     len(lab13), 100 * float((lab13[lab13 >= 0] == y_tr[lab13 >= 0]).mean()))
        x_ho, y_ho = train_all.images[ho_idx], train_all.majority()[ho_idx]
        x_te, y_te = val.images, val.majority()
        log.info("FER+ (%d classes): train %d, hold-out %d (seed %d; %d with a majority label), validation %d "
                 "(%d with a majority label); train top-vote classes %s", n_cls, len(y_tr), len(y_ho),
                 holdout_seed(vars(args)), int((y_ho >= 0).sum()), len(y_te), int((y_te >= 0).sum()),
                 np.bincount(y_tr, minlength=n_cls).tolist())
    else:
        train_all = load_npz(args.data_dir / "train.npz")
        test = load_npz(args.data_dir / "validation.npz")
        tr_idx, ho_idx = stratified_holdout(train_all.labels, args.holdout, holdout_seed(vars(args)))
        if args.train_subset < 1.0:
            keep, _ = stratified_holdout(train_all.labels[tr_idx], 1 - args.train_subset, args.seed + 1)
            tr_idx = tr_idx[keep]
        x_tr, y_tr = train_all.images[tr_idx], train_all.labels[tr_idx]
        t_tr = None
        x_ho, y_ho = train_all.images[ho_idx], train_all.labels[ho_idx]
        x_te, y_te = test.images, test.labels
        log.info("train %d, hold-out %d (seed %d), PublicTest %d originals; per-class train %s",
                 len(y_tr), len(y_ho), holdout_seed(vars(args)), len(y_te), np.bincount(y_tr, minlength=7).tolist())

    if args.equalize:
        x_ho, x_te = equalize_images(x_ho), equalize_images(x_te)
        log.info("faces histogram-equalised (training faces after augmentation)")
    if args.aux_fer2013 > 0 and (not ferplus or args.teacher or args.head != "plain"):
        raise SystemExit("--aux-fer2013 needs --dataset ferplus and --head plain, without --teacher")
    n_aux = aux_classes(vars(args))
    model = build(args.arch, args.head, num_classes=n_cls + n_aux, num_head=args.num_head, dropout=args.dropout,
                  sa_reduce=args.sa_reduce, fusion=args.fusion)
    aux: list[torch.nn.Parameter] = []
    affinity = partition = None
    if args.head == "dan":
        affinity = AffinityLoss(n_cls, model.features.out_channels)
        partition = PartitionLoss(args.partition_eps)
    if args.init is not None and not args.resume:
        init_net, init_ck = load_run(args.init)
        ia = init_ck["args"]
        # a FER2013 network (7 classes) may start a FER+ run: the labels share their order (LABELS8 = LABELS +
        # contempt), so the head's 7 rows carry over and contempt's row starts from scratch
        across = ia.get("dataset", "fer2013") == "fer2013" and ferplus and num_classes(ia) == 7 <= n_cls
        if (ia["arch"], ia["head"]) != (args.arch, args.head) or (num_classes(ia) != n_cls and not across):
            raise SystemExit(f"--init {args.init} is {ia['arch']}/{ia['head']} with {num_classes(ia)} classes, this run "
                             f"is {args.arch}/{args.head} with {n_cls}")
        if ia.get("dataset", "fer2013") == args.dataset and \
                (ia["holdout"], holdout_seed(ia)) != (args.holdout, holdout_seed(vars(args))):
            raise SystemExit(f"--init {args.init} kept another hold-out: it may have trained on this run's hold-out")
        if aux_classes(ia):
            raise SystemExit(f"--init {args.init} has a FER2013 head: initialise from a run without one")
        src = init_net.state_dict()
        if n_aux or num_classes(ia) != n_cls:       # rows the init network lacks start from scratch
            dst = model.state_dict()
            for k in ("fc.weight", "fc.bias"):
                d = dst[k].clone()
                d[:num_classes(ia)] = src[k]
                src[k] = d
        model.load_state_dict(src)
        log.info("initialised from %s (epoch %d)%s", args.init, init_ck["epoch"],
                 f", rebuilt from {init_ck['rebuilt_from']}" if init_ck.get("rebuilt_from") else "")
    if args.train_only:
        if args.init is None or not args.freeze_bn:
            raise SystemExit("--train-only keeps the rest of a network as it was: it needs --init and --freeze-bn")
        names = [n for n, _ in model.named_parameters()]
        for prefix in args.train_only:
            if not any(n == prefix or n.startswith(prefix + ".") for n in names):
                raise SystemExit(f"--train-only {prefix}: no parameter of {args.arch}/{args.head} is named so")
        trained = 0
        for n, prm in model.named_parameters():
            prm.requires_grad = any(n == q or n.startswith(q + ".") for q in args.train_only)
            trained += prm.numel() if prm.requires_grad else 0
        log.info("training only %s: %d of %d parameters", ", ".join(args.train_only), trained, count_params(model))
    memory_format = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    if affinity is not None:
        affinity.to(device)
        aux = list(affinity.parameters())
    log.info("model %s/%s: %d parameters (+%d affinity centres), %d classes", args.arch, args.head,
             count_params(model), sum(p.numel() for p in aux), n_cls)
    teachers: list[torch.nn.Module] = []
    for run in args.teacher:
        net, ck = load_run(run)
        ta = ck["args"]
        if (ta.get("dataset", "fer2013"), num_classes(ta)) != (args.dataset, n_cls):
            raise SystemExit(f"teacher {run} was trained on {ta.get('dataset', 'fer2013')} with {num_classes(ta)} "
                             f"classes, this run is {args.dataset} with {n_cls}")
        if (ta["holdout"], holdout_seed(ta)) != (args.holdout, holdout_seed(vars(args))):
            raise SystemExit(f"teacher {run} kept another hold-out (fraction {ta['holdout']}, seed "
                             f"{holdout_seed(ta)}): it may have trained on this run's hold-out")
        if bool(ta.get("equalize", False)) != args.equalize:
            raise SystemExit(f"teacher {run} was trained {'with' if ta.get('equalize') else 'without'} --equalize, "
                             "this run the other way: a teacher must see faces as it was trained on them")
        teachers.append(net.to(device, memory_format=memory_format).eval())
        log.info("teacher %s: %s/%s, %d epochs, final hold-out accuracy %.4f", run, ta["arch"], ta["head"],
                 ck["epoch"], ck["history"][-1]["holdout_acc"])
    opt = torch.optim.SGD(param_groups(model, aux, args.wd), lr=args.lr, momentum=0.9, nesterov=True)
    repeat = 1 if ferplus else args.disgust_repeat
    steps_per_epoch = len(epoch_order(y_tr, repeat, args.seed, 0)) // args.batch
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
        a = ck["args"]
        if (a["arch"], a["head"], a["epochs"], a.get("dataset", "fer2013"), num_classes(a)) != \
                (args.arch, args.head, args.epochs, args.dataset, n_cls):
            raise ValueError(f"{ckpt_path} was trained with arch/head/epochs/dataset/classes "
                             f"{a['arch']}/{a['head']}/{a['epochs']}/{a.get('dataset', 'fer2013')}/{num_classes(a)}"
                             "; pass the same flags")
        model.load_state_dict(ck["model"])
        if affinity is not None:
            affinity.load_state_dict(ck["affinity"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        history, start = ck["history"], ck["epoch"]
        log.info("resumed from %s after epoch %d", ckpt_path, start)

    cfg = AugmentConfig() if args.augment == "basic" else WebcamConfig()
    aug = augment if args.augment == "basic" else augment_webcam
    ce = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    eye = torch.eye(n_cls)
    last = args.epochs if not args.stop_after else min(args.epochs, start + args.stop_after)
    for epoch in range(start, args.epochs):
        if epoch >= last:
            log.info("stopping after epoch %d as asked (--stop-after); continue with --resume", epoch)
            break
        t0 = time.perf_counter()
        model.train()
        if args.freeze_bn:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        torch.manual_seed(args.seed * 1000 + epoch)               # dropout
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch + 1)   # augmentation
        order = epoch_order(y_tr, repeat, args.seed, epoch)
        tot_loss = tot_aux = correct = seen = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x = aug(to_tensor(x_tr[idx]).to(device, non_blocking=True), cfg, gen)
            if args.equalize:
                x = equalize_tensor(x)
            y = torch.from_numpy(y_tr[idx]).to(device, non_blocking=True)
            if soft:
                if t_tr is not None:
                    t = torch.from_numpy(t_tr[idx])
                else:                                   # FER2013 labels as (smoothed) one-hot targets
                    t = eye[torch.from_numpy(y_tr[idx])] * (1 - args.label_smoothing) + args.label_smoothing / n_cls
                t = t.to(device)
                if args.mix_prob > 0:
                    x, t, _ = mix_batch(x, t, args.mix_prob, args.mixup_alpha, args.cutmix_alpha, gen)
                x = x.contiguous(memory_format=memory_format)
                out, feat, heads = model.forward_train(x)
                if teachers:
                    with torch.no_grad():
                        tl = torch.stack([net(x) for net in teachers]).mean(dim=0)
                    tau = args.distill_temp
                    pt = F.softmax(tl / tau, dim=1)
                    loss = ((1 - args.distill) * soft_cross_entropy(out, t)
                            + args.distill * tau * tau * soft_cross_entropy(out / tau, pt))
                elif n_aux:
                    loss = (soft_cross_entropy(out[:, :n_cls], t[:, :n_cls])
                            + args.aux_fer2013 * soft_cross_entropy(out[:, n_cls:], t[:, n_cls:]))
                else:
                    loss = soft_cross_entropy(out, t)
            else:
                x = x.contiguous(memory_format=memory_format)
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
            correct += (out[:, :n_cls].argmax(1) == y).sum().item()
            seen += len(y)
        train_s = time.perf_counter() - t0
        if ferplus:
            ho_acc = majority_accuracy(predict(model, x_ho)[:, :n_cls], y_ho)
            te_acc = majority_accuracy(predict(model, x_te)[:, :n_cls], y_te)
        else:
            ho_acc = float((predict(model, x_ho).argmax(1) == y_ho).mean())
            te_acc = float((predict(model, x_te).argmax(1) == y_te).mean())
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
              "epoch": epoch + 1, "history": history, "args": {k: _plain(v) for k, v in vars(args).items()},
              "command": command}
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(ck, tmp)
        os.replace(tmp, ckpt_path)
        (args.out / "history.json").write_text(json.dumps(history, indent=1))
    if history and history[-1]["epoch"] == args.epochs:
        total = sum(h["seconds"] for h in history)
        log.info("done: %d epochs, %.1f min of epoch time; final %s %.4f, hold-out %.4f",
                 args.epochs, total / 60, "FER+ validation" if ferplus else "PublicTest", history[-1]["val_acc"],
                 history[-1]["holdout_acc"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
