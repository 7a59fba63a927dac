"""The book's training recipe and evaluation, built from OML's pieces (chapters
01 and 02)."""

from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from oml.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.interfaces.miners import ITripletsMiner
from oml.losses import TripletLossWithMiner
from oml.miners import AllTripletsMiner
from oml.retrieval import RetrievalResults
from oml.samplers import BalanceSampler

from oml_helpers.data import (
    check_dataframe,
    digit_transforms,
    make_digits_dataset,
    split_dataframe,
)
from oml_helpers.device import get_device, seed_everything
from oml_helpers.metrics import check_top_k, embedding_metrics
from oml_helpers.models import SmallCNN

# The book's recipe (chapter 01): 180 steps of 5 digits x 8 images, Adam from 3e-3
# on a cosine schedule.
RECIPE_EPOCHS = 180
RECIPE_LR = 3e-3
RECIPE_BATCH = (5, 8)  # (n_labels, n_instances)


def make_datasets(
    df: pd.DataFrame, dataset_root: Union[str, Path], augment: bool = True
) -> Tuple[ImageLabeledDataset, ImageQueryGalleryLabeledDataset]:
    """OML's training and validation datasets for a dataframe, with every image file
    kept in memory.

    Caching the file bytes (OML's ``cache_size``) means each PNG is read from disk
    once, which matters on a GPU, where loading, not the model, would otherwise set
    the pace.

    Args:
        df: A dataframe in OML's format with both splits.
        dataset_root: Folder the paths start from.
        augment: Apply ``digit_transforms(train=True)`` to the training images.

    Returns:
        ``(train_dataset, validation_dataset)``.
    """
    check_dataframe(df, dataset_root)
    df_train, df_val = split_dataframe(df)
    train = ImageLabeledDataset(
        df_train,
        dataset_root=dataset_root,
        transform=digit_transforms(augment),
        cache_size=len(df_train),
    )
    val = ImageQueryGalleryLabeledDataset(
        df_val,
        dataset_root=dataset_root,
        transform=digit_transforms(False),
        cache_size=len(df_val),
    )
    return train, val


def train_extractor(
    model: torch.nn.Module,
    dataset: ImageLabeledDataset,
    epochs: int = RECIPE_EPOCHS,
    lr: float = RECIPE_LR,
    margin: float = 0.2,
    miner: Optional[ITripletsMiner] = None,
    n_labels: int = RECIPE_BATCH[0],
    n_instances: int = RECIPE_BATCH[1],
) -> pd.DataFrame:
    """Train an extractor with OML's triplet loss: the plain PyTorch loop of chapter
    01.

    Args:
        model: The extractor, trained in place on the device it is on.
        dataset: A labelled training dataset.
        epochs: Passes of ``BalanceSampler`` over the labels (each pass is
            ``n_labels_total // n_labels`` batches).
        lr: Starting learning rate of Adam; a cosine schedule takes it towards zero.
        margin: Triplet margin.
        miner: Triplet miner; ``AllTripletsMiner()`` by default.
        n_labels: Labels per batch.
        n_instances: Images per label in a batch.

    Returns:
        One row per step: ``step``, ``epoch``, ``loss``, ``active_tri`` (share of
        triplets still violating the margin), ``pos_dist`` and ``neg_dist`` (mean
        anchor-positive and anchor-negative distances).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    device = next(model.parameters()).device
    loader, optimizer, scheduler = balanced_schedule(
        model, dataset, epochs, lr, n_labels, n_instances
    )
    criterion = make_criterion(miner, margin)

    logs = []
    model.train()
    for epoch in range(epochs):
        for batch in loader:
            embeddings = model(batch["input_tensors"].to(device))
            loss = criterion(embeddings, batch["labels"].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            logs.append(
                {
                    "step": len(logs),
                    "epoch": epoch,
                    "loss": loss.item(),
                    **_floats(criterion.last_logs),
                }
            )
    model.eval()
    return pd.DataFrame(logs)


def make_criterion(
    miner: Optional[ITripletsMiner] = None, margin: float = 0.2
) -> TripletLossWithMiner:
    """The book's loss: OML's triplet loss over the triplets a miner picks in each
    batch.

    Args:
        miner: Triplet miner; ``AllTripletsMiner()`` (every triplet of the batch) by
            default.
        margin: Triplet margin.

    Returns:
        ``TripletLossWithMiner`` with ``need_logs=True``: after each call its
        ``last_logs`` hold ``active_tri``, ``pos_dist`` and ``neg_dist``.
    """
    return TripletLossWithMiner(
        margin=margin, miner=miner or AllTripletsMiner(), need_logs=True
    )


def balanced_loader(
    dataset: Dataset, n_labels: int, n_instances: int
) -> DataLoader:
    """A loader of ``BalanceSampler`` batches: ``n_labels`` labels, ``n_instances``
    images of each.

    Args:
        dataset: A labelled dataset (it has ``get_labels()``).
        n_labels: Labels per batch; an epoch has ``number_of_labels // n_labels``
            batches.
        n_instances: Images per label in a batch.

    Returns:
        The loader.
    """
    n_dataset_labels = len(set(dataset.get_labels().tolist()))
    if not 2 <= n_labels <= n_dataset_labels:
        raise ValueError(
            f"n_labels must be between 2 and the {n_dataset_labels} labels of the "
            f"dataset, got {n_labels}."
        )
    sampler = BalanceSampler(
        dataset.get_labels(), n_labels=n_labels, n_instances=n_instances
    )
    return DataLoader(dataset, batch_sampler=sampler)


def balanced_schedule(
    model: torch.nn.Module,
    dataset: Dataset,
    epochs: int,
    lr: float,
    n_labels: int,
    n_instances: int,
) -> Tuple[DataLoader, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The book's training set-up: ``BalanceSampler`` batches, Adam, and a cosine
    schedule over all steps.

    Args:
        model: The model whose parameters Adam updates.
        dataset: A labelled dataset (it has ``get_labels()``).
        epochs: Passes of ``BalanceSampler`` over the labels; the schedule reaches
            zero after the last.
        lr: Starting learning rate.
        n_labels: Labels per batch.
        n_instances: Images per label in a batch.

    Returns:
        ``(loader, optimizer, scheduler)``; step the scheduler after every optimiser
        step.
    """
    loader = balanced_loader(dataset, n_labels, n_instances)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs * len(loader)
    )
    return loader, optimizer, scheduler


def _floats(logs: Dict) -> Dict[str, float]:
    return {
        k: float(v)
        for k, v in logs.items()
        if k in ("active_tri", "pos_dist", "neg_dist")
    }


def retrieval_metrics(
    model: torch.nn.Module,
    dataset: ImageQueryGalleryLabeledDataset,
    top_k: Tuple[int, ...] = (1, 5),
    n_items: int = 10,
) -> Tuple[Dict[str, float], RetrievalResults]:
    """Embed a query/gallery dataset and compute CMC, precision and mAP at
    ``top_k``.

    Args:
        model: The extractor.
        dataset: A labelled query/gallery dataset.
        top_k: Values of k for every metric (at most ``n_items``).
        n_items: Gallery items retrieved per query.

    Returns:
        ``({"cmc/1": ..., "precision/5": ..., "map/5": ...}, retrieval_results)``.
    """
    check_top_k(top_k, n_items)
    embeddings = inference(model, dataset, batch_size=256)
    return embedding_metrics(embeddings, dataset, top_k, n_items)


def train_digits_model(
    root: Union[str, Path], seed: int = 0, epochs: int = RECIPE_EPOCHS
) -> SmallCNN:
    """Train the book's model: chapter 01's recipe (all triplets) on the digits 0-4.

    The repository ships the model this makes (``load_book_model("digits")``), so
    that the later chapters need not train it again; this function is the one line
    that retrains it.

    Args:
        root: Data folder; the digits are written there if missing.
        seed: Random seed. Reruns agree closely but not bit for bit: the last digits
            depend on the CPU and on how torch splits the work between its threads.
        epochs: Training length (see ``train_extractor``).

    Returns:
        A trained ``SmallCNN`` in eval mode, on the GPU when there is one.
    """
    df = make_digits_dataset(root)
    train, _ = make_datasets(df, root)
    seed_everything(seed)
    model = SmallCNN().to(get_device())
    train_extractor(model, train, epochs=epochs)
    return model
