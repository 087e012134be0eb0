"""Compact expression networks for 48×48 grayscale faces (FER2013), trained on CPU.

Two heads on one backbone, so that the only difference between them is the head:

* ``plain``: global average pool → dropout → linear (the baseline);
* ``dan``: DAN's multi-head cross attention (Wen et al., "Distract Your Attention", MIT reference code
  github.com/yaoing/DAN) scaled down: ``heads`` × (spatial attention: 1×1 reduce, then 3×3 + 1×3 + 3×1 convs
  summed, ReLU, summed over channels into one spatial map that multiplies the features; channel attention:
  GAP → Linear → BN → ReLU → Linear → Sigmoid that multiplies the pooled vector), the heads' vectors fused
  (``fusion``: DAN's log-softmax across heads then sum, or their mean), then Linear + BatchNorm1d → logits. Trained with DAN's affinity
  and partition losses (:class:`AffinityLoss`, :class:`PartitionLoss`).

Every network takes ``(N, 1, 48, 48)`` float input normalised as ``(x/255 - 0.5) / 0.5`` and returns
logits ``(N, 7)`` from ``forward``; ``forward_train`` also returns what the auxiliary losses need.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs); a strided 3×3 conv and a 1×1 projection when shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)), inplace=True)


class Backbone(nn.Module):
    """48×48×1 → C×6×6. ``widths`` are the channels at 24, 12 and 6 px; ``blocks`` the basic blocks per stage."""

    def __init__(self, stem: int = 32, widths: tuple[int, ...] = (48, 96, 192), blocks: tuple[int, ...] = (1, 1, 1)) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(1, stem), conv_bn(stem, widths[0], stride=2)]   # 48 px, then 24 px
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, stride=2 if (i > 0 and j == 0) else 1))
                cin = w
        self.body = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PlainNet(nn.Module):
    def __init__(self, backbone: Backbone, num_classes: int = 7, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = backbone
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        f = self.features(x)
        return self.fc(self.drop(f.mean(dim=(2, 3)))), f, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)[0]


class SpatialAttention(nn.Module):
    """DAN's spatial attention at ``c`` channels with a ``mid``-channel bottleneck."""

    def __init__(self, c: int, mid: int, reduce: str = "sum") -> None:
        super().__init__()
        self.reduce = reduce
        self.conv1x1 = nn.Sequential(nn.Conv2d(c, mid, 1), nn.BatchNorm2d(mid))
        self.conv_3x3 = nn.Sequential(nn.Conv2d(mid, c, 3, padding=1), nn.BatchNorm2d(c))
        self.conv_1x3 = nn.Sequential(nn.Conv2d(mid, c, (1, 3), padding=(0, 1)), nn.BatchNorm2d(c))
        self.conv_3x1 = nn.Sequential(nn.Conv2d(mid, c, (3, 1), padding=(1, 0)), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1x1(x)
        y = F.relu(self.conv_3x3(y) + self.conv_1x3(y) + self.conv_3x1(y))
        # DAN sums the map over channels; "mean" divides it by C so that its scale does not grow with the width
        # (from scratch, the summed map saturated the log-softmax fusion and the network did not learn).
        a = y.mean(dim=1, keepdim=True) if self.reduce == "mean" else y.sum(dim=1, keepdim=True)
        return x * a


class ChannelAttention(nn.Module):
    """DAN's channel attention: GAP, then a sigmoid gate from a ``c → c/r → c`` bottleneck."""

    def __init__(self, c: int, hidden: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.Linear(c, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, c), nn.Sigmoid())

    def forward(self, sa: torch.Tensor) -> torch.Tensor:
        v = sa.mean(dim=(2, 3))
        return v * self.attention(v)


class CrossAttentionHead(nn.Module):
    def __init__(self, c: int, mid: int, hidden: int, reduce: str = "sum") -> None:
        super().__init__()
        self.sa = SpatialAttention(c, mid, reduce)
        self.ca = ChannelAttention(c, hidden)
        for m in self.modules():      # DAN's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ca(self.sa(x))


class DANNet(nn.Module):
    """Compact DAN: ``num_head`` cross-attention heads on the backbone's last feature map."""

    def __init__(self, backbone: Backbone, num_classes: int = 7, num_head: int = 4, mid: int = 32,
                 hidden: int = 32, reduce: str = "sum", fusion: str = "mean") -> None:
        super().__init__()
        if fusion not in ("logsoftmax", "mean"):
            raise ValueError(f"fusion must be 'logsoftmax' (DAN) or 'mean', got {fusion!r}")
        self.fusion = fusion
        self.features = backbone
        c = backbone.out_channels
        self.num_head = num_head
        self.heads = nn.ModuleList(CrossAttentionHead(c, mid, hidden, reduce) for _ in range(num_head))
        self.fc = nn.Linear(c, num_classes)
        self.bn = nn.BatchNorm1d(num_classes)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.features(x)
        heads = torch.stack([h(f) for h in self.heads], dim=1)          # (N, heads, C)
        if self.fusion == "logsoftmax" and self.num_head > 1:
            fused = F.log_softmax(heads, dim=1).sum(dim=1)    # DAN's fusion
        else:
            fused = heads.mean(dim=1)
        out = self.bn(self.fc(fused))
        return out, f, heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)[0]


class AffinityLoss(nn.Module):
    """DAN's affinity loss: pull pooled features to learnable class centres, scaled by the centres' spread."""

    def __init__(self, num_classes: int, feat_dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, feat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = feat.mean(dim=(2, 3)) if feat.dim() == 4 else feat
        d = (x - self.centers[labels]).pow(2).sum(dim=1)
        d = d / self.centers.var(dim=0).sum()
        return d.clamp(1e-12, 1e12).mean()


class PartitionLoss(nn.Module):
    """DAN's partition loss ``log(1 + heads / var)`` (variance across heads) — pushes heads to attend differently.

    ``eps`` is added to the variance: trained from scratch, the heads start almost identical (variance ~1e-4 with
    the mean-reduced spatial map), where DAN's form has a gradient ~1/var that swamped the classification loss
    (the network stayed at the majority class). ``eps=0`` is DAN's original, fine with the summed map.
    """

    def __init__(self, eps: float = 0.0) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, heads: torch.Tensor) -> torch.Tensor:
        n = heads.size(1)
        if n < 2:
            return heads.new_zeros(())
        return torch.log(1 + n / (heads.var(dim=1).mean() + self.eps))


ARCHS = {
    # name: (backbone kwargs)
    "r3": dict(stem=32, widths=(48, 96, 192), blocks=(1, 1, 1)),
    "r3w": dict(stem=32, widths=(64, 128, 256), blocks=(1, 1, 1)),
    "r3d": dict(stem=32, widths=(48, 96, 192), blocks=(1, 2, 2)),
    "r3wd": dict(stem=32, widths=(64, 128, 256), blocks=(1, 1, 2)),
}


def build(arch: str, head: str, num_classes: int = 7, num_head: int = 4, dropout: float = 0.3,
          sa_reduce: str = "sum", fusion: str = "mean") -> nn.Module:
    """``arch`` from :data:`ARCHS`; ``head`` is ``plain`` or ``dan``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(ARCHS)}")
    bb = Backbone(**ARCHS[arch])
    if head == "plain":
        return PlainNet(bb, num_classes, dropout)
    if head == "dan":
        return DANNet(bb, num_classes, num_head=num_head, reduce=sa_reduce, fusion=fusion)
    raise ValueError(f"unknown head {head!r}; choose 'plain' or 'dan'")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class HeadMix(nn.Module):
    """A network trained with an auxiliary FER2013-label head (``--aux-fer2013``) as a ``num_classes``-logit model.

    The network's outputs are ``num_classes`` FER+ logits then 7 FER2013 logits (FER2013's label order, which is
    the first 7 of the FER+ order). ``mix`` = 0 gives the FER+ logits alone; otherwise the log of
    ``(1 - mix) · softmax(FER+) + mix · softmax(FER2013)`` (contempt gets only the FER+ share), a valid logit vector
    that the export calibrates like any other."""

    def __init__(self, net: nn.Module, num_classes: int, mix: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"head mix must be within 0..1, got {mix}")
        self.net, self.num_classes, self.mix = net, num_classes, float(mix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        main = out[:, :self.num_classes]
        if self.mix == 0.0:
            return main
        p = (1 - self.mix) * torch.softmax(main, dim=1)
        aux = self.mix * torch.softmax(out[:, self.num_classes:], dim=1)
        p = torch.cat([p[:, :7] + aux, p[:, 7:]], dim=1)
        return torch.log(p.clamp_min(1e-6))
