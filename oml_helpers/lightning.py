"""OML's Lightning pieces set up the way chapters 03 and 04 use them (and the DDP
demo script)."""

import logging
import warnings
from typing import Any, Dict, Optional, Tuple

import torch
from torch.utils.data import DataLoader

from oml.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml.metrics import EmbeddingMetrics

from oml_helpers.device import silence_known_warnings
from oml_helpers.training import balanced_loader, make_criterion

# Lightning 2.1 warns at import about packages it uses; nothing is wrong
with warnings.catch_warnings():
    silence_known_warnings()
    import pytorch_lightning as pl
    from oml.lightning.callbacks.metric import MetricValCallback
    from oml.lightning.modules.extractor import ExtractorModule, ExtractorModuleDDP

LIGHTNING_LOGGERS = (
    "pytorch_lightning",
    "lightning",
    "lightning_fabric",
    "lightning.pytorch",
)


def quiet_lightning() -> None:
    """Hide Lightning's info lines ("GPU available: False", "`Trainer.fit`
    stopped", ...); warnings still show."""
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class MetricValCallbackFewFigures(MetricValCallback):
    """OML's ``MetricValCallback`` that logs its worst-query figures only every
    ``figures_every_n_epochs``.

    Drawing the figures takes about a second each on a CPU, longer than a small
    model's validation; metrics are still computed and logged after every
    validation. Figures also come after the last epoch.
    """

    def __init__(
        self,
        metric: EmbeddingMetrics,
        figures_every_n_epochs: int = 5,
        **kwargs: Any,
    ):
        """
        Args:
            metric: The metric, e.g. ``EmbeddingMetrics``.
            figures_every_n_epochs: Log figures after epochs ``n-1, 2n-1, ...`` and
                after the last one.
            kwargs: Passed on to ``MetricValCallback`` (``log_images`` is always
                ``True``).
        """
        if figures_every_n_epochs < 1:
            raise ValueError(
                "figures_every_n_epochs must be at least 1, got "
                f"{figures_every_n_epochs}."
            )
        super().__init__(metric, log_images=True, **kwargs)
        self.figures_every_n_epochs = figures_every_n_epochs

    def _log_images(self, pl_module: pl.LightningModule) -> None:
        epoch, trainer = pl_module.current_epoch, pl_module.trainer
        every = self.figures_every_n_epochs
        if (epoch + 1) % every == 0 or epoch + 1 == trainer.max_epochs:
            super()._log_images(pl_module)


def make_loaders(
    train_dataset: ImageLabeledDataset,
    val_dataset: ImageQueryGalleryLabeledDataset,
    n_labels: int = 2,
    n_instances: int = 32,
    val_batch_size: int = 256,
) -> Tuple[DataLoader, DataLoader]:
    """A ``BalanceSampler`` training loader and a sequential validation loader.

    Args:
        train_dataset: Labelled training dataset.
        val_dataset: Query/gallery validation dataset.
        n_labels: Labels per batch; an epoch has ``number_of_labels // n_labels``
            batches.
        n_instances: Images per label in a batch.
        val_batch_size: Validation batch size (``drop_last`` stays off: the metric
            needs every item).

    Returns:
        ``(train_loader, val_loader)``.
    """
    train_loader = balanced_loader(train_dataset, n_labels, n_instances)
    return train_loader, DataLoader(val_dataset, batch_size=val_batch_size)


def make_metric(val_dataset: ImageQueryGalleryLabeledDataset) -> EmbeddingMetrics:
    """``EmbeddingMetrics`` with the book's metrics: CMC@1, precision@5, mAP@5 and
    PCF at 50% variance.

    Args:
        val_dataset: Query/gallery validation dataset.

    Returns:
        The metric, silent (``verbose=False``).
    """
    return EmbeddingMetrics(
        dataset=val_dataset,
        cmc_top_k=(1,),
        precision_top_k=(5,),
        map_top_k=(5,),
        pcf_variance=(0.5,),
        verbose=False,
    )


def make_module(
    extractor: torch.nn.Module,
    lr: float = 1e-3,
    margin: float = 0.2,
    ddp_loaders: Optional[Dict[str, DataLoader]] = None,
    cosine_steps: Optional[int] = None,
) -> ExtractorModule:
    """OML's ``ExtractorModule`` with the book's loss (all triplets of each batch,
    as in chapter 01) and Adam.

    With ``cosine_steps`` the rate follows chapter 01's cosine schedule, passed to
    OML as ``ExtractorModule(scheduler=..., scheduler_interval="step")`` so that
    Lightning steps it after every optimiser step.

    Not ``HardTripletsMiner``: trained from scratch with it, the model collapses
    (chapter 01: the loss settles at the margin while all distances shrink towards
    zero).

    Args:
        extractor: The model to train.
        lr: Learning rate of Adam: constant, or where the cosine schedule starts.
        margin: Triplet margin.
        ddp_loaders: ``{"train": loader, "val": loader}`` to build
            ``ExtractorModuleDDP`` instead, which splits the loaders between
            processes itself; then do not pass loaders to ``trainer.fit``.
        cosine_steps: Length of a cosine schedule from ``lr`` to zero, in optimiser
            steps (epochs x batches per epoch); ``None`` keeps the rate constant.

    Returns:
        The Lightning module.
    """
    if cosine_steps is not None and cosine_steps < 1:
        raise ValueError(
            "cosine_steps must be at least 1 (epochs x batches per epoch), got "
            f"{cosine_steps}."
        )
    optimizer = torch.optim.Adam(extractor.parameters(), lr=lr)
    kwargs: Dict[str, Any] = dict(
        extractor=extractor,
        criterion=make_criterion(margin=margin),
        optimizer=optimizer,
    )
    if cosine_steps is not None:
        kwargs["scheduler"] = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=cosine_steps
        )
        kwargs["scheduler_interval"] = "step"
    if ddp_loaders is None:
        return ExtractorModule(**kwargs)
    unknown = set(ddp_loaders) - {"train", "val"}
    if unknown:
        raise ValueError(
            f"ddp_loaders takes the keys 'train' and 'val', got {sorted(unknown)}."
        )
    return ExtractorModuleDDP(
        loaders_train=ddp_loaders.get("train"),
        loaders_val=ddp_loaders.get("val"),
        **kwargs,
    )


def make_trainer(max_epochs: int, **kwargs: Any) -> pl.Trainer:
    """A CPU/GPU ``pl.Trainer`` that validates every epoch, logs every step and
    prints no progress bars.

    Args:
        max_epochs: Training length in epochs.
        kwargs: Any other ``pl.Trainer`` argument (``logger``, ``callbacks``,
            ``strategy``, ...), overriding these.

    Returns:
        The trainer.
    """
    quiet_lightning()
    settings = dict(
        max_epochs=max_epochs,
        accelerator="auto",
        devices=1,
        check_val_every_n_epoch=1,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    settings.update(kwargs)
    return pl.Trainer(**settings)
