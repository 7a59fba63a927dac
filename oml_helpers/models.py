"""Extractors: a small CNN that trains in seconds on a CPU, and OML's pretrained
ViT when online."""

from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from oml.interfaces.models import IExtractor


class SmallCNN(IExtractor):
    """Three convolutional blocks and a linear head, with L2-normalised output.

    It subclasses OML's ``IExtractor``, the type that ``ExtractorModule`` and
    ``ConcatSiamese`` are written for (``inference`` takes any torch module):
    ``forward``/``extract`` give embeddings and ``feat_dim`` their size. About 28k
    parameters with the defaults.
    """

    def __init__(self, feat_dim: int = 64, width: int = 16, in_channels: int = 3):
        """
        Args:
            feat_dim: Size of the embeddings.
            width: Channels of the first block; the next blocks double it.
            in_channels: Channels of the input images (3: OML reads images as RGB).
        """
        super().__init__()
        if feat_dim < 1 or width < 1 or in_channels < 1:
            raise ValueError(
                "feat_dim, width and in_channels must be positive, got "
                f"{feat_dim}, {width}, {in_channels}."
            )
        channels = [in_channels, width, 2 * width, 4 * width]
        blocks = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.backbone = nn.Sequential(
            *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(channels[-1], feat_dim)
        self._feat_dim = feat_dim

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(
                "Expected a batch of images [batch, channels, height, width], got "
                f"shape {tuple(x.shape)}."
            )
        return F.normalize(self.head(self.backbone(x)), dim=1)

    @property
    def feat_dim(self) -> int:
        return self._feat_dim


class PretrainedUnavailableError(RuntimeError):
    """OML's pretrained weights could not be downloaded."""


def pretrained_extractor(name: str = "vits16_dino", **kwargs: Any) -> IExtractor:
    """OML's pretrained ViT from its model zoo; it downloads weights, so it needs
    the internet.

    Args:
        name: A key of ``ViTExtractor.pretrained_models``, e.g. ``"vits16_dino"``.
        kwargs: Passed on to ``ViTExtractor.from_pretrained``.

    Returns:
        The extractor, in eval mode.

    Raises:
        KeyError: ``name`` is not in OML's zoo (the message lists the names).
        PretrainedUnavailableError: The download failed; the message says what to do
            instead.
    """
    from oml.models import ViTExtractor

    if name not in ViTExtractor.pretrained_models:
        raise KeyError(
            f"No pretrained ViT called {name!r}; choose one of "
            f"{sorted(ViTExtractor.pretrained_models)}."
        )
    try:
        return ViTExtractor.from_pretrained(name, **kwargs).eval()
    # the zoo tries several hosts; each fails in its own way when offline
    except Exception as e:
        raise PretrainedUnavailableError(
            f"Could not download the weights of {name!r} ({type(e).__name__}: "
            f"{str(e)[:200]}). This needs the internet: run the cell in Colab, or "
            "train SmallCNN from scratch offline."
        ) from e


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    Args:
        model: Any torch module.

    Returns:
        The count.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
