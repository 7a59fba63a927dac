"""The checkers of chapter 06 accept the right answer and turn down typical wrong ones with a
reason."""

import numpy as np
import pytest
import torch
from PIL import Image

from oml.const import LABELS_COLUMN
from oml.datasets import ImageQueryGalleryDataset
from oml.inference import inference
from oml.retrieval import RetrievalResults

from oml_helpers import (
    EmbeddingStore,
    SmallCNN,
    digit_transforms,
    query_gallery_split,
    seed_everything,
    split_dataframe,
)
from oml_helpers import exercises as ex
from verdicts import says as _says


def _rr(n_queries: int = 12, n_items: int = 8, seed: int = 0) -> RetrievalResults:
    """Synthetic labelled results: sorted distances; a result is right more often when it is
    close."""
    rng = np.random.default_rng(seed)
    distances = np.sort(rng.uniform(0.1, 1.2, size=(n_queries, n_items)), axis=1)
    retrieved = [rng.permutation(40)[:n_items] for _ in range(n_queries)]
    gt = [
        np.array([i for i, d in zip(r, row) if rng.random() > d * 0.6] or [99])
        for r, row in zip(retrieved, distances)
    ]
    return RetrievalResults(
        distances=[torch.tensor(d, dtype=torch.float32) for d in distances],
        retrieved_ids=[torch.tensor(r).long() for r in retrieved],
        gt_ids=[torch.tensor(g).long() for g in gt],
    )


def _adaptive(per_list=False, strict=True, extra=0, empty_if_no_gap=False, reorder=False):
    """AdaptiveThresholding written from its definition, with one typical mistake switched on."""

    def fn(rr, n_std):
        all_gaps = torch.cat([d[1:] - d[:-1] for d in rr.distances])
        kept = []
        for ids, d in zip(rr.retrieved_ids, rr.distances):
            gaps = d[1:] - d[:-1]
            limit = n_std * (gaps.mean() if per_list else all_gaps.mean())
            big = (gaps > limit) if strict else (gaps >= limit)
            if not big.any():
                kept.append(ids[:0] if empty_if_no_gap else ids)
                continue
            first = int(big.nonzero()[0])
            kept.append(ids[: first + 1 + extra])
        return [k.flip(0) if reorder else k for k in kept]

    return fn


def _rr_uneven():
    """Lists of different lengths and spreads, so that per-list and batch mean gaps differ."""
    rr = _rr(n_queries=12, n_items=8, seed=5)
    cut = [8, 5, 8, 3, 8, 6, 8, 8, 4, 8, 7, 8]
    stretch = [1.0, 3.0, 0.3, 1.0, 2.0, 0.5, 1.0, 4.0, 1.0, 0.2, 1.0, 1.0]
    return RetrievalResults(
        distances=[(d[:n] - d[0]) * s + d[0] for d, n, s in zip(rr.distances, cut, stretch)],
        retrieved_ids=[r[:n] for r, n in zip(rr.retrieved_ids, cut)],
        gt_ids=rr.gt_ids,
    )


def test_adaptive_by_hand():
    rr = _rr_uneven()
    _says(ex.check_adaptive_by_hand(_adaptive(), rr), ex.RIGHT, "alone", "depends on its company")
    _says(ex.check_adaptive_by_hand(_adaptive(per_list=True), rr), ex.WRONG, "ONE mean")
    _says(ex.check_adaptive_by_hand(_adaptive(reorder=True), rr), ex.WRONG, "never reorders")
    _says(ex.check_adaptive_by_hand(_adaptive(empty_if_no_gap=True), rr), ex.WRONG, "keeps all")
    _says(ex.check_adaptive_by_hand(_adaptive(extra=-1), rr), ex.WRONG, "one result too few")
    _says(ex.check_adaptive_by_hand(_adaptive(extra=1), rr), ex.WRONG, "one result too many")
    _says(ex.check_adaptive_by_hand(lambda rr, n: [], rr), ex.WRONG, "one list of ids per query")

    def everything(rr, n_std):  # no cut at all
        return list(rr.retrieved_ids)

    _says(ex.check_adaptive_by_hand(everything, rr), ex.WRONG, "OML keeps")


def _kept(rr, th):
    """How many results a threshold keeps (distance < th) over all queries, and the share right."""
    kept = [(r[d < th], gt) for r, d, gt in zip(rr.retrieved_ids, rr.distances, rr.gt_ids)]
    n = sum(len(k) for k, _ in kept)
    return n, (sum(int(torch.isin(k, gt).sum()) for k, gt in kept) / n if n else 0.0)


def _best_threshold(rr, min_precision):
    candidates = sorted(torch.cat(rr.distances).tolist())
    best = 0.0
    for d in candidates:
        kept = [
            (r[dist <= d], gt) for r, dist, gt in zip(rr.retrieved_ids, rr.distances, rr.gt_ids)
        ]
        n = sum(len(k) for k, _ in kept)
        right = sum(int(torch.isin(k, gt).sum()) for k, gt in kept)
        if n and right / n >= min_precision:
            best = d
    return best


def test_precision_threshold():
    rr, rr_other = _rr(seed=3), _rr(seed=4)
    best = _best_threshold(rr, 0.8)
    _says(
        ex.check_precision_threshold(best + 1e-6, rr, rr_other, min_precision=0.8),
        ex.RIGHT,
        "keeps",
        "On the held-out queries",
        "The other way round",
    )
    # wrapped to the page, no line is left with a single word
    shown = repr(ex.check_precision_threshold(best + 1e-6, rr, rr_other, min_precision=0.8))
    assert all(len(line.split()) > 1 for line in shown.split("\n")), shown
    # exactly at the best distance drops that one result: within the slack, so accepted
    _says(ex.check_precision_threshold(best, rr, rr_other, min_precision=0.8), ex.RIGHT, "fragile")
    # a safe threshold at a distance that keeps more than KEPT_SLACK results fewer: turned down
    n_best, _ = _kept(rr, best + 1e-6)
    safe = [
        d
        for d in torch.cat(rr.distances).tolist()
        if _kept(rr, d)[0] < n_best - ex.retrieval.KEPT_SLACK and _kept(rr, d)[1] >= 0.8
    ]
    _says(
        ex.check_precision_threshold(max(safe), rr, rr_other, min_precision=0.8),
        ex.WRONG,
        "keeps only",
        "equals a distance",
    )
    _says(
        ex.check_precision_threshold(2.0, rr, rr_other, min_precision=0.8),
        ex.WRONG,
        "below 0.8",
        "lower it",
    )
    _says(
        ex.check_precision_threshold(0.0, rr, rr_other, min_precision=0.8),
        ex.WRONG,
        "keeps no result",
    )
    _says(
        ex.check_precision_threshold([0.3, 0.5], rr, rr_other, min_precision=0.8),
        ex.WRONG,
        "one number",
    )
    smaller = sorted(d for d in torch.cat(rr.distances).tolist() if d < best)[0]
    _says(
        ex.check_precision_threshold(smaller + 1e-6, rr, rr_other, min_precision=0.8),
        ex.WRONG,
        "a larger threshold keeps",
    )
    # tuned on the held-out results instead: right for them, not for the tuning ones it is checked
    # on
    best_other = _best_threshold(rr_other, 0.8)
    if not np.isclose(best_other, best):
        _says(
            ex.check_precision_threshold(best_other + 1e-6, rr, rr_other, min_precision=0.8),
            ex.WRONG,
        )
    unlabeled = RetrievalResults(distances=rr.distances, retrieved_ids=rr.retrieved_ids)
    _says(ex.check_precision_threshold(0.5, unlabeled, rr_other), ex.WRONG, "gt_ids")


def test_precision_threshold_fragile_gap_is_the_students():
    # a threshold one distance below the best passes thanks to the slack; the "next distance"
    # the verdict names must be the one above the student's th, not above the best
    rr, rr_other = _rr(seed=3), _rr(seed=4)
    best = _best_threshold(rr, 0.8)
    below = sorted(d for d in torch.cat(rr.distances).tolist() if d < best)
    th = below[-1] + 1e-6
    verdict = ex.check_precision_threshold(th, rr, rr_other, min_precision=0.8)
    gap = best - th
    assert gap > 1e-4
    _says(verdict, ex.RIGHT, "fragile", f"lies {gap:.4f} above it")


@pytest.fixture(scope="module")
def search_setup(digits_root, _digits_df_session, tmp_path_factory):
    seed_everything(0)
    model = SmallCNN().eval()
    _, df_val = split_dataframe(_digits_df_session)
    df_qg = query_gallery_split(df_val.groupby(LABELS_COLUMN).head(6), n_queries_per_label=1)
    dataset = ImageQueryGalleryDataset(
        df_qg.drop(columns=[LABELS_COLUMN]),
        dataset_root=digits_root,
        transform=digit_transforms(False),
    )
    gallery_ids = dataset.get_gallery_ids().numpy()
    gallery = inference(model, dataset, batch_size=64)[gallery_ids].numpy()
    store = EmbeddingStore.create(
        tmp_path_factory.mktemp("store") / "g.db", model_name="untrained", dim=64
    )
    store.add((500 + gallery_ids[::-1]).tolist(), gallery[::-1].copy())  # added out of id order
    image = Image.open(digits_root / df_qg["path"].iloc[0]).convert("RGB")
    yield model, image, store, dataset
    store.close()


def _search(largest=False, squared=False, positions=False, eval_mode=True):
    """Exercise 06.3 written out, with one typical mistake switched on."""

    def fn(model, images, transform, store, k):
        stored = store.load()
        batch = torch.stack([transform(im.convert("RGB")) for im in images])
        with torch.no_grad():
            queries = (model.eval() if eval_mode else model)(batch)
        d = torch.cdist(queries, torch.from_numpy(stored.vectors)) ** (2 if squared else 1)
        distances, rows = d.topk(k, dim=1, largest=largest)
        return (rows if positions else stored.ids[rows.numpy()]), distances

    return fn


def _images(image):
    return [image, image.rotate(90), image.transpose(Image.FLIP_LEFT_RIGHT)]


def test_search(search_setup):
    model, image, store, _ = search_setup
    transform = digit_transforms(False)
    images = _images(image)

    def check(fn, k=4):
        return ex.check_search(fn, model, images, transform, store, k=k)

    _says(check(_search()), ex.RIGHT, "3 images")
    _says(check(_search(largest=True)), ex.WRONG, "farthest")
    _says(check(_search(squared=True)), ex.WRONG, "squared")
    _says(check(_search(positions=True)), ex.WRONG, "positions", "store.load().ids")

    def shuffled(*args):
        return tuple(torch.as_tensor(x).flip(1) for x in _search()(*args))

    _says(check(shuffled), ex.WRONG, "wrong order")
    _says(
        check(lambda *args: (torch.tensor([0]), torch.tensor([0.1]))),
        ex.WRONG,
        "each of shape [3, 4]",
    )


def test_search_without_eval_is_caught_and_the_model_comes_back_unchanged(search_setup):
    """The checker hands the student's function a model in training mode: a missing
    model.eval() gets a BatchNorm hint, and the model's mode and statistics are restored."""
    model, image, store, _ = search_setup
    transform = digit_transforms(False)
    images = _images(image)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    for mode in (False, True):
        model.train(mode)
        _says(
            ex.check_search(_search(eval_mode=False), model, images, transform, store, k=4),
            ex.WRONG,
            "model.eval()",
            "BatchNorm",
        )
        assert model.training is mode
        after = model.state_dict()
        assert all(torch.equal(before[name], after[name]) for name in before)
    model.eval()
    _says(ex.check_search(_search(), model, images, transform, store, k=4), ex.RIGHT)


def test_best_threshold_matches_a_loop_over_constant_thresholding():
    """The checker's vectorised search keeps as many results as OML does at its threshold, ties
    included."""
    rng = np.random.default_rng(1)
    for decimals in (1, 2, 6):  # few decimals: many tied distances
        d = np.sort(np.round(rng.uniform(0.1, 1, (15, 8)), decimals), axis=1).astype(np.float32)
        rr = RetrievalResults(
            distances=[torch.tensor(x) for x in d],
            retrieved_ids=[torch.tensor(rng.permutation(30)[:8]) for _ in d],
            gt_ids=[torch.tensor(rng.choice(30, 12, replace=False)) for _ in d],
        )
        for min_precision in (0.3, 0.5, 0.9):
            th, n_kept = ex.retrieval._best_threshold(rr, min_precision)
            assert _kept(rr, th)[0] == n_kept
            if n_kept:
                assert _kept(rr, th)[1] >= min_precision
            loop = [
                _kept(rr, c)[0]
                for c in np.unique(d).tolist() + [2.0]
                for c in [c + 1e-7]
                if _kept(rr, c)[0] and _kept(rr, c)[1] >= min_precision
            ]
            assert n_kept == max(loop, default=0)
