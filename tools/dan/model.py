"""DAN in PyTorch, written for MindFlow with the state-dict key names of the reference implementation.

Reference: github.com/yaoing/DAN (MIT), ``networks/dan.py``. This file is an independent re-implementation of the
same architecture so that the reference checkpoints load with ``strict=True`` and no torchvision is needed:

- ``features.0`` … ``features.7``: ResNet-18 without avgpool/fc (conv1, bn1, relu, maxpool, layer1–layer4),
  keys as in torchvision (``features.4.0.conv1.weight``, ``features.5.0.downsample.0.weight``, …).
  224×224 input → 512×7×7 feature map.
- ``cat_head0`` … ``cat_head3``: spatial attention (``sa``) then channel attention (``ca``); each head gives a
  512-vector.
- fusion: stack heads ``(N, 4, 512)``, log_softmax across heads, sum over heads, ``fc`` (512→C), ``bn``
  (BatchNorm1d(C)). ``forward`` returns ``(out, feat, heads)`` like the reference; ``out`` are logits.

Input: ``(N, 3, 224, 224)`` float32 NCHW, RGB, ``(x/255 - mean) / std`` with the ImageNet mean/std.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

NUM_HEADS = 4
FEATURE_CHANNELS = 512
INPUT_SIZE = 224  # pixels, square
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs), torchvision's key names: conv1, bn1, conv2, bn2, downsample.{0,1}."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def resnet18_features() -> nn.Sequential:
    """ResNet-18 up to layer4 as ``nn.Sequential`` (indices 0–7 = conv1, bn1, relu, maxpool, layer1–4).

    ``(N, 3, 224, 224)`` → ``(N, 512, 7, 7)``.
    """
    def layer(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(in_ch, out_ch, stride), BasicBlock(out_ch, out_ch, 1))

    return nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        layer(64, 64, 1),
        layer(64, 128, 2),
        layer(128, 256, 2),
        layer(256, 512, 2),
    )


class SpatialAttention(nn.Module):
    """1×1 conv 512→256 + BN, then 3×3, 1×3, 3×1 convs 256→512 + BN each, summed, ReLU, summed over channels
    into one ``(N, 1, H, W)`` map that multiplies the input ``(N, 512, H, W)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1x1 = nn.Sequential(nn.Conv2d(512, 256, kernel_size=1), nn.BatchNorm2d(256))
        self.conv_3x3 = nn.Sequential(nn.Conv2d(256, 512, kernel_size=3, padding=1), nn.BatchNorm2d(512))
        self.conv_1x3 = nn.Sequential(nn.Conv2d(256, 512, kernel_size=(1, 3), padding=(0, 1)), nn.BatchNorm2d(512))
        self.conv_3x1 = nn.Sequential(nn.Conv2d(256, 512, kernel_size=(3, 1), padding=(1, 0)), nn.BatchNorm2d(512))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1x1(x)
        y = self.relu(self.conv_3x3(y) + self.conv_1x3(y) + self.conv_3x1(y))
        y = y.sum(dim=1, keepdim=True)
        return x * y


class ChannelAttention(nn.Module):
    """Global average pool ``(N, 512, H, W)`` → ``(N, 512)``, then ``attention`` = Linear 512→32, BatchNorm1d,
    ReLU, Linear 32→512, Sigmoid; returns the pooled vector times the attention ``(N, 512)``."""

    def __init__(self) -> None:
        super().__init__()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.attention = nn.Sequential(
            nn.Linear(512, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(inplace=True),
            nn.Linear(32, 512),
            nn.Sigmoid(),
        )

    def forward(self, sa: torch.Tensor) -> torch.Tensor:
        sa = self.gap(sa)
        sa = torch.flatten(sa, 1)  # the reference's sa.view(sa.size(0), -1); flatten exports a dynamic batch cleanly
        y = self.attention(sa)
        return sa * y


class CrossAttentionHead(nn.Module):
    """One DAN head: spatial attention then channel attention, ``(N, 512, H, W)`` → ``(N, 512)``."""

    def __init__(self) -> None:
        super().__init__()
        self.sa = SpatialAttention()
        self.ca = ChannelAttention()
        self._init_weights()

    def _init_weights(self) -> None:
        # The reference's CrossAttentionHead.init_weights (only matters for training from scratch).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ca(self.sa(x))


class DAN(nn.Module):
    """Distract Your Attention network with ``num_class`` outputs and ``num_head`` cross-attention heads.

    ``forward(x)`` with ``x`` ``(N, 3, 224, 224)`` returns ``(out, feat, heads)``: logits ``(N, num_class)``, the
    backbone's ``(N, 512, 7, 7)`` feature map and the per-head vectors ``(N, num_head, 512)`` (log-softmaxed
    across heads when there is more than one head), exactly as the reference.
    """

    def __init__(self, num_class: int = 8, num_head: int = NUM_HEADS) -> None:
        super().__init__()
        if num_class < 2:
            raise ValueError(f"DAN needs at least 2 classes, got num_class={num_class}")
        if num_head < 1:
            raise ValueError(f"DAN needs at least 1 head, got num_head={num_head}")
        self.num_class = num_class
        self.num_head = num_head
        self.features = resnet18_features()
        for i in range(num_head):
            setattr(self, f"cat_head{i}", CrossAttentionHead())
        self.sig = nn.Sigmoid()  # unused in forward; present in the reference (no parameters, no state-dict keys)
        self.fc = nn.Linear(FEATURE_CHANNELS, num_class)
        self.bn = nn.BatchNorm1d(num_class)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.features(x)
        heads = [getattr(self, f"cat_head{i}")(x) for i in range(self.num_head)]
        heads = torch.stack(heads).permute([1, 0, 2])
        if heads.size(1) > 1:
            heads = F.log_softmax(heads, dim=1)
        out = self.fc(heads.sum(dim=1))
        out = self.bn(out)
        return out, x, heads


class DANLogits(nn.Module):
    """Wraps :class:`DAN` so that ``forward`` returns the logits ``(N, C)`` only (what MindFlow exports)."""

    def __init__(self, dan: DAN) -> None:
        super().__init__()
        self.dan = dan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dan(x)[0]


@torch.no_grad()
def randomize(model: DAN, seed: int = 0, calibration_batches: int = 2, batch_size: int = 4) -> DAN:
    """Give ``model`` random but *working* weights, for tests and benchmarks (not a trained model).

    Freshly initialised networks in eval mode are degenerate: BatchNorm running statistics are 0/1, activations
    shrink or explode through the backbone and every input gets nearly the same output, which would make parity
    and preprocessing checks meaningless. Here convs get He init, BatchNorm affine parameters get random values,
    and the running statistics are re-estimated from ``calibration_batches`` batches of ``batch_size`` random
    224×224 inputs in train mode (cumulative average). Returns ``model`` in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        elif isinstance(m, nn.Linear):
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (1.0 / m.in_features) ** 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen))
            m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average over the calibration batches
    model.train()
    for _ in range(calibration_batches):
        model(torch.randn((batch_size, 3, INPUT_SIZE, INPUT_SIZE), generator=gen))
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.momentum = 0.1
    return model.eval()
