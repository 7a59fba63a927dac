"""Search a store with a new image (chapter 06): read it, embed it with the model's
own transform, search.

Nothing here is specific to digits except ``prepare_digit_photo``, the step that
turns a photo of dark ink on light paper into what the book's digit images look
like.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

# only the store's public API is used: create/open, dim, model_name, search
if TYPE_CHECKING:
    from oml_helpers.storage import EmbeddingStore

ImageInput = Union[str, Path, Image.Image]


def read_image(image: ImageInput) -> Image.Image:
    """An image file (or a PIL image) as an RGB PIL image, the way OML's datasets
    read images.

    Args:
        image: A path to a PNG, JPEG or any format Pillow reads, or a PIL image.

    Returns:
        An RGB PIL image of the same size; the pixels are not changed otherwise.

    Raises:
        FileNotFoundError: No file at the path.
        ValueError: The file is not an image Pillow can read, or ``image`` is
            neither a path nor an image.
    """
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if not isinstance(image, (str, Path)):
        raise ValueError(
            f"image must be a path or a PIL image, got {type(image).__name__}."
        )
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(
            f"No image file at {path}. Check the path (relative paths start at "
            f"{Path.cwd()})."
        )
    try:
        with Image.open(path) as opened:
            return opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(
            f"{path} is not an image Pillow can read ({e}). Give a PNG or JPEG "
            "file."
        ) from e


def prepare_digit_photo(image: ImageInput, size: int = 64) -> Image.Image:
    """Digit-specific: a photo of a dark digit on light paper, made to look like the
    book's digits.

    The book's digit images are 64x64, grey, a light digit on black. This makes the
    photo grey, inverts it (dark ink becomes light, light paper black) and resizes
    it to ``size`` x ``size``. Call it only for such photos: a light digit on a dark
    ground needs no inversion, and other kinds of data (products, faces) need none
    of this, only their model's own transform.

    Args:
        image: A path or a PIL image of a dark digit on a light background.
        size: Side of the output in pixels (the size of the gallery's images).

    Returns:
        An RGB PIL image, ``size`` x ``size``, light digit on dark.
    """
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}.")
    grey = np.asarray(read_image(image).convert("L"))
    inverted = Image.fromarray((255 - grey).astype(np.uint8))
    return inverted.resize((size, size), Image.BILINEAR).convert("RGB")


def load_image_tensor(
    image: ImageInput, transform: Callable[[Image.Image], torch.Tensor]
) -> torch.Tensor:
    """An image as a batch of one, through ``transform``: nothing added, nothing
    inverted.

    Args:
        image: A path or a PIL image (read as RGB, as OML's datasets do).
        transform: The model's own transform, the one its gallery was embedded with
            (the book's: ``h.digit_transforms(train=False)``).

    Returns:
        A ``[1, channels, height, width]`` tensor.

    Raises:
        FileNotFoundError, ValueError: A bad image or a transform that does not give
        a 3-d tensor.
    """
    tensor = transform(read_image(image))
    if not torch.is_tensor(tensor) or tensor.ndim != 3:
        got = (
            tuple(tensor.shape)
            if torch.is_tensor(tensor)
            else type(tensor).__name__
        )
        raise ValueError(
            "transform must turn an image into a [channels, height, width] "
            f"tensor, got {got}; end it with transforms.ToTensor() (and the "
            "model's normalisation)."
        )
    return tensor.unsqueeze(0)


def embed_image(
    model: torch.nn.Module,
    image: ImageInput,
    transform: Callable[[Image.Image], torch.Tensor],
) -> np.ndarray:
    """The model's embedding of one image, in eval mode, without gradients, on the
    model's device.

    Args:
        model: The extractor that embedded the gallery.
        image: A path or a PIL image.
        transform: The transform the gallery was embedded with.

    Returns:
        A float32 ``[feat_dim]`` numpy vector (on the CPU).
    """
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        embedding = model(load_image_tensor(image, transform).to(device))
    return embedding[0].cpu().numpy().astype(np.float32)


def search_image(
    model: torch.nn.Module,
    image: ImageInput,
    transform: Callable[[Image.Image], torch.Tensor],
    store: "EmbeddingStore",
    k: int = 5,
    **filters: Any,
) -> Any:
    """The ``k`` stored items nearest to a new image, nearest first.

    Args:
        model: The extractor whose embeddings the store holds.
        image: A path or a PIL image, prepared as the gallery's images were (see
            ``prepare_digit_photo``).
        transform: The transform the gallery was embedded with.
        store: An open ``EmbeddingStore``.
        k: Number of results, at least 1.
        **filters: Passed to ``store.search`` (e.g. ``is_gallery=True``).

    Returns:
        The store's ``SearchResult`` for this one query: ``ids`` (store ids),
        ``distances``, ``paths``.

    Raises:
        FileNotFoundError, ValueError: A bad image, ``k`` or a model of another
        embedding size.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(
            f"k must be a whole number of results, at least 1, got {k!r}."
        )
    query = embed_image(model, image, transform)
    dim = getattr(store, "dim", len(query))
    if len(query) != dim:
        raise ValueError(
            f"The model gives {len(query)}-d embeddings but the store holds "
            f"{dim}-d ones (model {getattr(store, 'model_name', '?')!r}): search "
            "with the model that filled it."
        )
    return store.search(query, k=int(k), **filters)
