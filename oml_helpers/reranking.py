"""Re-ranking with a pairwise model (chapter 07): a ConcatSiamese that compares
two images, trained on mined pairs."""

import copy
import time
from pathlib import Path
from typing import Sequence, Tuple, Union

import pandas as pd
import torch

from oml.const import EMBEDDINGS_KEY
from oml.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.interfaces.models import IExtractor
from oml.miners.pairs import PairsMiner
from oml.models import ConcatSiamese
from oml.retrieval import PairwiseReranker, RetrievalResults

from oml_helpers.data import digit_transforms
from oml_helpers.retrieval import correct_mask
from oml_helpers.training import balanced_schedule


def dataset_with_embeddings(
    extractor: IExtractor,
    df: pd.DataFrame,
    dataset_root: Union[str, Path],
    augment: bool = True,
) -> ImageLabeledDataset:
    """A labelled training dataset whose batches also carry the extractor's
    embedding of every image.

    ``PairsMiner`` picks the hardest pairs by these embeddings (the ``"embeddings"``
    key of the batch), so they come from the model whose mistakes the pairwise model
    should fix. They are computed once, without augmentation.

    Args:
        extractor: The trained extractor.
        df: Training rows in OML's format.
        dataset_root: Folder the paths start from.
        augment: Apply ``digit_transforms(train=True)`` to the images the pairwise
            model sees.

    Returns:
        An ``ImageLabeledDataset`` with ``extra_data={"embeddings": ...}``.
    """
    plain = ImageLabeledDataset(
        df,
        dataset_root=dataset_root,
        transform=digit_transforms(False),
        cache_size=len(df),
    )
    embeddings = inference(extractor, plain, batch_size=256)
    return ImageLabeledDataset(
        df,
        dataset_root=dataset_root,
        transform=digit_transforms(augment),
        extra_data={EMBEDDINGS_KEY: embeddings},
        cache_size=len(df),
    )


class PairFusionExtractor(IExtractor):
    """The extractor of a ``ConcatSiamese`` that looks at both images of a pair
    together.

    ``ConcatSiamese`` stacks the two images, the second below the first, and runs
    its extractor on the stack. This one runs the convolutional blocks of a trained
    ``SmallCNN`` on the stack, which gives one feature map: its top half describes
    the first image place by place, its bottom half the second (only the rows at the
    seam see a little of both). Instead of averaging the whole map (which would
    blend the two digits into one vector), it lays the two halves on top of each
    other along the channels, adds their product (large where both images have the
    same feature at the same place), and runs one more convolution over all of them
    together before pooling: every output feature compares the two images, place by
    place.
    """

    def __init__(self, extractor: IExtractor, width: int = 64):
        """
        Args:
            extractor: A ``SmallCNN`` (a ``backbone`` ending in pooling and
                flattening); its convolutional blocks are used, and trained further,
                as they are.
            width: Channels of the joint convolution, and size of the features.
        """
        super().__init__()
        backbone = getattr(extractor, "backbone", None)
        if not isinstance(backbone, torch.nn.Sequential) or not isinstance(
            backbone[-2], torch.nn.AdaptiveAvgPool2d
        ):
            raise ValueError(
                "PairFusionExtractor needs a SmallCNN (a backbone ending in "
                f"AdaptiveAvgPool2d and Flatten), got {type(extractor).__name__}."
            )
        self.trunk = backbone[:-2]
        channels = [
            m.out_channels for m in self.trunk if isinstance(m, torch.nn.Conv2d)
        ][-1]
        self.fuse = torch.nn.Sequential(
            torch.nn.Conv2d(3 * channels, width, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(width),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self._feat_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[2] % 16:
            raise ValueError(
                "Expected two images stacked along the height [batch, c, 2h, w] "
                f"with h a multiple of 8, got {tuple(x.shape)}."
            )
        features = self.trunk(x)
        half = features.shape[2] // 2
        a, b = features[:, :, :half], features[:, :, half:]
        return self.fuse(torch.cat([a, b, a * b], dim=1))

    @property
    def feat_dim(self) -> int:
        return self._feat_dim


def make_siamese(
    extractor: IExtractor, hidden: Sequence[int] = (32,), width: int = 64
) -> ConcatSiamese:
    """OML's ``ConcatSiamese`` with a ``PairFusionExtractor`` on a copy of a trained
    ``SmallCNN``.

    ``ConcatSiamese`` stacks the two images into one (one above the other), runs its
    extractor on it and maps the features to one logit with its MLP head (sigmoid
    activations, dropout 0.5, no bias at the end): high means "different". The
    extractor itself stays as it is.

    Args:
        extractor: The trained ``SmallCNN`` to start from.
        hidden: Hidden layer sizes of the MLP head.
        width: Channels of the joint convolution (``PairFusionExtractor``).

    Returns:
        The pairwise model, on the extractor's device.
    """
    inner = copy.deepcopy(extractor)
    # the new layers (fusion, head) are made on the CPU: move them too
    device = next(inner.parameters()).device
    siamese = ConcatSiamese(
        extractor=PairFusionExtractor(inner, width=width),
        mlp_hidden_dims=list(hidden),
    )
    return siamese.to(device)


def train_siamese(
    model: ConcatSiamese,
    dataset: ImageLabeledDataset,
    epochs: int = 80,
    lr: float = 3e-3,
    n_labels: int = 5,
    n_instances: int = 6,
    hard_mining: bool = True,
) -> pd.DataFrame:
    """Train a pairwise model on pairs mined from precomputed embeddings, with
    ``BCEWithLogitsLoss``.

    Each batch is ``n_labels x n_instances`` images; ``PairsMiner`` turns it into
    positive pairs (same label, target 0) and negative pairs (target 1), the hardest
    ones by the embeddings when ``hard_mining``. This is the loop of OML's
    ``PairwiseModule`` without Lightning.

    Args:
        model: The pairwise model, trained in place on the device it is on.
        dataset: A labelled dataset with ``extra_data["embeddings"]``
            (``dataset_with_embeddings``).
        epochs: Passes of ``BalanceSampler`` over the labels.
        lr: Learning rate of Adam, taken towards zero by a cosine schedule.
        n_labels: Labels per batch.
        n_instances: Images per label in a batch.
        hard_mining: Mine the hardest pairs; ``False`` uses all of them.

    Returns:
        One row per step: ``step``, ``loss``, ``n_pairs``, ``accuracy`` (pairs
        judged right at probability 0.5).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    if EMBEDDINGS_KEY not in getattr(dataset, "extra_data", {}):
        raise ValueError(
            f"The dataset's batches carry no '{EMBEDDINGS_KEY}', which PairsMiner "
            "needs to pick pairs; build it with "
            "dataset_with_embeddings(extractor, df, dataset_root)."
        )
    device = next(model.parameters()).device
    loader, optimizer, scheduler = balanced_schedule(
        model, dataset, epochs, lr, n_labels, n_instances
    )
    miner = PairsMiner(hard_mining=hard_mining)
    criterion = torch.nn.BCEWithLogitsLoss()

    logs = []
    model.train()
    for _ in range(epochs):
        for batch in loader:
            ids1, ids2, is_negative = miner.sample(
                features=batch[EMBEDDINGS_KEY], labels=batch["labels"].tolist()
            )
            images = batch["input_tensors"].to(device)
            logits = model(x1=images[ids1], x2=images[ids2])
            target = is_negative.float().to(device)
            loss = criterion(logits, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            accuracy = ((logits > 0).float() == target).float().mean().item()
            logs.append(
                {
                    "step": len(logs),
                    "loss": loss.item(),
                    "n_pairs": len(ids1),
                    "accuracy": accuracy,
                }
            )
    model.eval()
    return pd.DataFrame(logs)


def rerank(
    model: ConcatSiamese,
    rr: RetrievalResults,
    dataset: ImageQueryGalleryLabeledDataset,
    top_n: int,
    batch_size: int = 128,
) -> Tuple[RetrievalResults, float]:
    """Re-rank the ``top_n`` first results of every query with OML's
    ``PairwiseReranker``, and time it.

    Args:
        model: The trained pairwise model.
        rr: Retrieval results of ``dataset`` by the extractor.
        dataset: The query/gallery dataset (its images are read again for every
            pair).
        top_n: Results re-ranked per query, from 2 to ``rr.n_retrieved_items``; the
            rest keep their place.
        batch_size: Pairs per forward pass.

    Returns:
        ``(new_retrieval_results, seconds)``.
    """
    if not 2 <= top_n <= rr.n_retrieved_items:
        raise ValueError(
            f"top_n must be between 2 and the {rr.n_retrieved_items} retrieved "
            f"items, got {top_n}."
        )
    reranker = PairwiseReranker(
        top_n=top_n,
        pairwise_model=model.eval(),
        num_workers=0,
        batch_size=batch_size,
    )
    start = time.perf_counter()
    rr_new = reranker.process(rr, dataset)
    return rr_new, time.perf_counter() - start


def changed_top1(before: RetrievalResults, after: RetrievalResults) -> pd.DataFrame:
    """Queries whose first result changed, and whether it was right before and
    after.

    Args:
        before: Retrieval results before re-ranking (with ``gt_ids``).
        after: The same queries after re-ranking (with ``gt_ids`` too: OML's
            ``PairwiseReranker`` keeps them).

    Returns:
        One row per changed query: ``query_id``, ``top1_before``, ``top1_after``,
        ``correct_before``, ``correct_after``.
    """
    if len(before.retrieved_ids) != len(after.retrieved_ids):
        raise ValueError(
            f"before has {len(before.retrieved_ids)} queries and after "
            f"{len(after.retrieved_ids)}: compare the same queries."
        )
    right_before = correct_mask(before, "before")
    right_after = correct_mask(after, "after")
    rows = []
    for q, (b, a) in enumerate(zip(before.retrieved_ids, after.retrieved_ids)):
        if len(b) and len(a) and int(b[0]) != int(a[0]):
            rows.append(
                {
                    "query_id": q,
                    "top1_before": int(b[0]),
                    "top1_after": int(a[0]),
                    "correct_before": bool(right_before[q][0]),
                    "correct_after": bool(right_after[q][0]),
                }
            )
    columns = [
        "query_id",
        "top1_before",
        "top1_after",
        "correct_before",
        "correct_after",
    ]
    return pd.DataFrame(rows, columns=columns)
