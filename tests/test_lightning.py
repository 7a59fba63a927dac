"""The Lightning helpers: loaders, module, callback and trainer settings, with bad input."""

import pytest
from torch.utils.data import DataLoader

from oml.miners import AllTripletsMiner
from oml_helpers import SmallCNN, make_datasets
from oml_helpers.lightning import (
    ExtractorModule,
    ExtractorModuleDDP,
    MetricValCallbackFewFigures,
    make_loaders,
    make_metric,
    make_module,
    make_trainer,
)


def test_loaders_give_labels_over_n_labels_batches(small_df, digits_root):
    train, val = make_datasets(small_df, digits_root)
    train_loader, val_loader = make_loaders(train, val, n_labels=2, n_instances=4)
    assert len(train_loader) == 2  # 5 training digits // 2 labels per batch
    batch = next(iter(train_loader))
    assert len(batch["labels"].unique()) == 2 and len(batch["labels"]) == 8
    assert not val_loader.drop_last and len(val_loader.dataset) == len(val)
    for bad in (1, 6):
        with pytest.raises(ValueError, match="n_labels must be between 2 and the 5"):
            make_loaders(train, val, n_labels=bad)


def test_module_and_ddp_module(small_df, digits_root):
    train, val = make_datasets(small_df, digits_root)
    loaders = dict(zip(("train", "val"), make_loaders(train, val)))
    module = make_module(SmallCNN())
    assert type(module) is ExtractorModule
    # all triplets, as in chapter 01: HardTripletsMiner from scratch collapses
    assert (
        type(module.criterion.miner) is AllTripletsMiner and module.criterion.tri_loss.margin == 0.2
    )
    assert isinstance(make_module(SmallCNN(), ddp_loaders=loaders), ExtractorModuleDDP)
    with pytest.raises(ValueError, match=r"'train' and 'val', got \['test'\]"):
        make_module(SmallCNN(), ddp_loaders={"test": DataLoader(val)})


def test_module_with_cosine_schedule():
    assert (
        make_module(SmallCNN()).configure_optimizers().__class__.__name__ == "Adam"
    )  # constant rate
    module = make_module(SmallCNN(), lr=3e-3, cosine_steps=4)
    [optimizer], [scheduler] = module.configure_optimizers()
    assert scheduler["interval"] == "step" and scheduler["frequency"] == 1
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler["scheduler"].step()
    assert rates[0] == pytest.approx(3e-3) and rates == sorted(rates, reverse=True)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(
        0.0, abs=1e-12
    )  # zero after the last step
    with pytest.raises(ValueError, match="cosine_steps must be at least 1"):
        make_module(SmallCNN(), cosine_steps=0)


def test_callback_and_trainer_settings(small_df, digits_root):
    _, val = make_datasets(small_df, digits_root)
    callback = MetricValCallbackFewFigures(make_metric(val), figures_every_n_epochs=3)
    assert callback.log_images and callback.figures_every_n_epochs == 3
    with pytest.raises(ValueError, match="at least 1"):
        MetricValCallbackFewFigures(make_metric(val), figures_every_n_epochs=0)
    trainer = make_trainer(2, logger=False, enable_checkpointing=False, accelerator="cpu")
    assert (
        trainer.max_epochs == 2
        and trainer.check_val_every_n_epoch == 1
        and trainer.progress_bar_callback is None
    )
