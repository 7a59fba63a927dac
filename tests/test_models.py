"""Tests of oml_helpers.models: SmallCNN, count_parameters and pretrained_extractor."""

import time

import pytest
import torch
from torch import nn

from oml.datasets import ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.interfaces.models import IExtractor
from oml.models import ViTExtractor
from oml_helpers import PretrainedUnavailableError, SmallCNN, count_parameters, pretrained_extractor
from oml_helpers.data import digit_transforms

# oml.inference enters torch.autocast("cuda"), which warns on a CPU (see device.KNOWN_WARNINGS)
pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SmallCNN(feat_dim=32, width=8).eval()


@pytest.mark.parametrize("n, size", [(1, 64), (5, 64), (3, 32), (2, 8)])
def test_output_shape_and_norm(model, n, size):
    with torch.no_grad():
        out = model(torch.randn(n, 3, size, size))
    assert out.shape == (n, 32)
    assert torch.all(torch.isfinite(out))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(n))


def test_defaults_and_feat_dim():
    default = SmallCNN()
    assert default.feat_dim == 64
    assert SmallCNN(feat_dim=7).feat_dim == 7
    with torch.no_grad():
        assert default.eval()(torch.randn(2, 3, 64, 64)).shape[1] == default.feat_dim


def test_in_channels():
    gray = SmallCNN(in_channels=1).eval()
    with torch.no_grad():
        assert gray(torch.randn(2, 1, 16, 16)).shape == (2, 64)
    with pytest.raises(RuntimeError):  # torch's own channel mismatch
        gray(torch.randn(2, 3, 16, 16))


def test_is_an_oml_extractor(model):
    assert isinstance(model, IExtractor)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.extract(x), model(x))


def test_train_mode_backward(model):
    model.train()
    out = model(torch.randn(6, 3, 32, 32))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_works_with_oml_inference(digits_root, small_df):
    df_val = small_df[small_df["split"] == "validation"].reset_index(drop=True)
    dataset = ImageQueryGalleryLabeledDataset(
        df_val, dataset_root=digits_root, transform=digit_transforms(False)
    )
    torch.manual_seed(0)
    model = SmallCNN(feat_dim=16)
    embeddings = inference(model, dataset, batch_size=16)
    assert embeddings.shape == (len(df_val), 16)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(len(df_val)))
    # the same as calling the model on the dataset's tensors ourselves
    batch = torch.stack([dataset[i]["input_tensors"] for i in range(5)])
    with torch.no_grad():
        torch.testing.assert_close(embeddings[:5], model.eval()(batch), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"feat_dim": 0},
        {"feat_dim": -3},
        {"width": 0},
        {"in_channels": 0},
        {"width": -1, "in_channels": 3},
    ],
)
def test_bad_constructor_args(kwargs):
    with pytest.raises(ValueError, match="feat_dim, width and in_channels must be positive"):
        SmallCNN(**kwargs)


@pytest.mark.parametrize("shape", [(3, 64, 64), (64, 64), (1, 1, 3, 64, 64)])
def test_input_not_a_batch_of_images(model, shape):
    with pytest.raises(
        ValueError,
        match=r"Expected a batch of images.*got shape "
        + str(shape).replace("(", r"\(").replace(")", r"\)"),
    ):
        model(torch.randn(*shape))


def test_count_parameters_equals_manual_sum():
    model = SmallCNN()
    manual = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == manual
    # derived from the architecture: convs without bias, batch norms with weight and bias, linear
    # head
    w, f = 16, 64
    convs = 3 * w * 9 + w * 2 * w * 9 + 2 * w * 4 * w * 9
    norms = 2 * (w + 2 * w + 4 * w)
    head = 4 * w * f + f
    assert manual == convs + norms + head


def test_count_parameters_skips_frozen():
    model = SmallCNN(feat_dim=10)
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    assert count_parameters(model) == 64 * 10 + 10
    assert count_parameters(nn.Identity()) == 0


# ---------------------------------------------------------------------------------------
# pretrained_extractor


def test_unknown_pretrained_name_lists_the_names():
    with pytest.raises(
        KeyError, match=r"No pretrained ViT called 'resnet_nonsense'; choose one of \["
    ) as info:
        pretrained_extractor("resnet_nonsense")
    for name in ViTExtractor.pretrained_models:
        assert repr(name) in str(info.value)


def test_download_failure_is_wrapped(monkeypatch):
    calls = []

    def fail(weights, **kwargs):
        calls.append((weights, kwargs))
        raise ConnectionError("Failed to resolve 'dl.fbaipublicfiles.com'")

    monkeypatch.setattr(ViTExtractor, "from_pretrained", fail)
    start = time.perf_counter()
    with pytest.raises(
        PretrainedUnavailableError, match=r"'vits16_dino'.*ConnectionError.*Colab"
    ) as info:
        pretrained_extractor("vits16_dino", arch="vits16")
    assert time.perf_counter() - start < 30
    assert calls == [("vits16_dino", {"arch": "vits16"})]
    assert isinstance(info.value.__cause__, ConnectionError)
    assert isinstance(info.value, RuntimeError)
    assert "SmallCNN" in str(info.value)


def test_long_download_error_is_shortened(monkeypatch):
    def fail(weights, **kwargs):
        raise OSError("x" * 5000)

    monkeypatch.setattr(ViTExtractor, "from_pretrained", fail)
    with pytest.raises(PretrainedUnavailableError) as info:
        pretrained_extractor("vits16_dino")
    assert len(str(info.value)) < 500


def test_pretrained_is_returned_in_eval_mode(monkeypatch):
    stub = SmallCNN().train()
    monkeypatch.setattr(ViTExtractor, "from_pretrained", lambda weights, **kwargs: stub)
    result = pretrained_extractor("vits16_dino")
    assert result is stub
    assert not result.training
