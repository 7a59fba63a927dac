"""Checker for exercise 02.3 of chapter 02, Validation: predict, then measure,
whether raw pixels or the trained model keeps its CMC@1 better when every
validation image is shifted at random."""

from typing import List

import torch

from oml.interfaces.datasets import IQueryGalleryLabeledDataset
from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict

PREDICTIONS = ("pixels", "model")
# one query of the 896 moves CMC@1 by 0.0011; leave room for float noise
TOLERANCE = 0.003


def _cmc1(vectors: torch.Tensor, dataset: IQueryGalleryLabeledDataset) -> float:
    """CMC@1 of ``dataset``'s gallery ranked by the Euclidean distance of
    ``vectors``."""
    rr = RetrievalResults.from_embeddings(vectors, dataset, n_items=1)
    metrics = calc_retrieval_metrics_rr(
        rr, cmc_top_k=(1,), precision_top_k=(), map_top_k=(), verbose=False
    )
    return float(metrics["cmc"][1])


@torch.no_grad()
def _embed(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    batches = [
        model(images[i : i + 256].to(device)) for i in range(0, len(images), 256)
    ]
    return torch.cat(batches).cpu()


def _images_problems(shifted: object, clean: torch.Tensor) -> List[str]:
    """What is wrong with ``shifted`` as a shifted copy of ``clean`` (empty if
    nothing)."""
    if not isinstance(shifted, torch.Tensor):
        return [
            f"`shifted` is a {type(shifted).__name__}; give the shifted images as "
            f"one tensor of shape {tuple(clean.shape)}, e.g. with torch.stack."
        ]
    if tuple(shifted.shape) != tuple(clean.shape):
        return [
            f"`shifted` has the shape {tuple(shifted.shape)}, the validation "
            f"images {tuple(clean.shape)}: shift every image, in dataset order."
        ]
    if not torch.isfinite(shifted).all():
        return ["`shifted` holds NaN or infinite values."]
    changed = (shifted != clean).flatten(1).any(1).float().mean()
    if changed < 0.5:
        return [
            f"only {changed:.0%} of your images differ from the clean ones: "
            "shift every image at random."
        ]
    return []


def _number_problem(name: str, value: object, truth: float, clean: float) -> str:
    """Why ``value`` is not ``truth``, the CMC@1 of the shifted images ('' if
    it is)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return f"`{name}` should be a number, the CMC@1; got {value!r}."
    if abs(value - truth) <= TOLERANCE:
        return ""
    if abs(value - clean) <= TOLERANCE:
        return (
            f"`{name}` = {value:.3f} is the CMC@1 of the clean images; measure it "
            "on your shifted ones."
        )
    return (
        f"`{name}` = {value:.3f}, but your shifted images give CMC@1 "
        f"{truth:.3f}. Rank them as the chapter ranks the clean ones "
        "(RetrievalResults.from_embeddings with val_dataset)."
    )


@checker
def check_shift_robustness(
    prediction: str,
    shifted: torch.Tensor,
    cmc1_pixels: float,
    cmc1_model: float,
    model: torch.nn.Module,
    dataset: IQueryGalleryLabeledDataset,
) -> Verdict:
    """Exercise 02.3: the CMC@1 of raw pixels and of ``model`` on shifted images.

    The checker recomputes both numbers from ``shifted`` (and the clean ones from
    ``dataset``), so any random shift is accepted; the prediction is compared with
    the measurement but does not decide the verdict.

    Args:
        prediction: "pixels" or "model": which was predicted to keep CMC@1 better.
        shifted: Every image of ``dataset``, in its order, shifted.
        cmc1_pixels: The answer for the raw pixels' CMC@1 on ``shifted``.
        cmc1_model: The answer for the model's CMC@1 on ``shifted``.
        model: The trained extractor.
        dataset: The validation dataset (queries and gallery).

    Returns:
        The verdict; on success it gives both drops and says whose is smaller.
    """
    guess = str(prediction).strip().lower()
    if guess not in PREDICTIONS:
        return _verdict(
            [
                f"`prediction` is {prediction!r}; write 'pixels' or 'model' "
                "before you measure."
            ],
            "",
        )
    clean = torch.stack([dataset[i]["input_tensors"] for i in range(len(dataset))])
    problems = _images_problems(shifted, clean)
    if problems:
        return _verdict(problems, "")
    truth = {
        "pixels": _cmc1(shifted.flatten(1), dataset),
        "model": _cmc1(_embed(model, shifted), dataset),
    }
    before = {
        "pixels": _cmc1(clean.flatten(1), dataset),
        "model": _cmc1(_embed(model, clean), dataset),
    }
    for name, value, kind in [
        ("cmc1_pixels", cmc1_pixels, "pixels"),
        ("cmc1_model", cmc1_model, "model"),
    ]:
        problem = _number_problem(name, value, truth[kind], before[kind])
        if problem:
            problems.append(problem)
    if problems:
        return _verdict(problems, "")
    # from the rounded values, so that the printed numbers add up
    before = {kind: round(value, 3) for kind, value in before.items()}
    truth = {kind: round(value, 3) for kind, value in truth.items()}
    drop = {kind: before[kind] - truth[kind] for kind in PREDICTIONS}
    winner = min(PREDICTIONS, key=lambda kind: drop[kind])
    names = {"pixels": "the raw pixels keep their", "model": "the model keeps its"}
    outcome = "as you predicted" if guess == winner else f"you predicted {guess}"
    return _verdict(
        [],
        f"on your shifted images the raw pixels' CMC@1 falls from "
        f"{before['pixels']:.3f} to {truth['pixels']:.3f} (by "
        f"{drop['pixels']:.3f}), the model's from {before['model']:.3f} to "
        f"{truth['model']:.3f} (by {drop['model']:.3f}). So {names[winner]} "
        f"CMC@1 better ({outcome}).",
    )
