"""Set-up for Google Colab: install OML 4.0 and its pipeline dependencies without
breaking the runtime.

OML 4.0.0 declares ``numpy<2`` while Colab ships numpy 2. Letting pip resolve that
would downgrade numpy under the running kernel and leave a broken session until a
restart. This module avoids the conflict instead: it installs OML and the few
packages Colab lacks with ``--no-deps``, keeps Colab's numpy, torch and torchvision,
and then checks that the imports the book needs work.

It uses only the standard library, so that the first cell of a notebook can run it
as a script before anything else is installed: ``python oml_helpers/colab.py``.
"""

import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys
from typing import Callable, Dict, List, Sequence

# Installed at exactly these versions, whatever Colab has: the stack the book is
# tested with.
PINNED: Dict[str, str] = {
    "open-metric-learning": "4.0.0",
    "pytorch-lightning": "2.1.2",
    "torchmetrics": "1.9.0",
    "lightning-utilities": "0.15.3",
    "omegaconf": "2.4.0",
    "hydra-core": "1.3.0",
    "antlr4-python3-runtime": "4.9.3",
    "albumentations": "2.0.8",
    "albucore": "0.0.24",
    "validators": "0.36.0",
}
# Installed only where missing (Colab normally has them); any installed version is
# kept.
IF_MISSING: Dict[str, str] = {
    "gdown": "6.5.1",
    "simsimd": "6.5.16",
    "stringzilla": "5.3.2",
    "opencv-python-headless": "4.11.0.86",
    "pydantic": "2.14.3",
    "pydantic-core": "2.50.4",
    "annotated-types": "0.8.0",
    "typing-inspection": "0.4.5",
    "scipy": "1.17.1",
    "beautifulsoup4": "4.15.0",
    "soupsieve": "4.1.2",
    "tensorboard": "2.18.0",
    "pandas": "2.2.3",
    "scikit-learn": "1.5.2",
    # Chapter 08's photos (skimage.data)
    "scikit-image": "0.25.2",
    "imageio": "2.38.2",
    "tifffile": "2026.3.3",
    "lazy-loader": "0.6",
    "networkx": "3.6.1",
    "matplotlib": "3.9.2",
    "PyYAML": "6.0.3",
    "fsspec": "2026.9.0",
    "tqdm": "4.70.1",
    "filelock": "4.2.11",
    # Chapter 04's ONNX export (torch.onnx.export needs onnxscript; onnxruntime runs
    # the file).
    "onnx": "1.23.2",
    "onnxscript": "0.7.2",
    "onnx-ir": "1.1.0",
    "onnxruntime": "1.32.0",
    "ml_dtypes": "0.5.4",
    "flatbuffers": "25.12.19",
    "protobuf": "7.36.2",
    "sympy": "1.14.0",
    "mpmath": "1.3.0",
}
# Lightning 2.1 imports pkg_resources, which setuptools deprecates (a warning from
# 81 on) and is removing; installed only where a runtime's setuptools no longer has
# it.
SETUPTOOLS_WITH_PKG_RESOURCES = "setuptools==80.10.2"
# What the chapters import; checked after installing.
IMPORTS: Sequence[str] = (
    "numpy",
    "torch",
    "torchvision",
    "oml.datasets",
    "oml.lightning",
    "oml.retrieval",
    "sklearn",
    "skimage.data",
)
# Packages Colab provides and the book relies on unchanged.
KEPT: Sequence[str] = ("numpy", "torch", "torchvision")


def in_colab() -> bool:
    """Whether this Python runs inside Google Colab (Colab imports ``google.colab``
    at start-up).

    Returns:
        ``True`` inside Colab.
    """
    return "google.colab" in sys.modules


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def packages_to_install() -> List[str]:
    """The ``name==version`` requirements still missing from this environment.

    Returns:
        Pinned packages at another version or absent, then ``IF_MISSING`` packages
        that are absent, then setuptools if ``pkg_resources`` is gone.
    """
    wanted = [
        f"{name}=={version}"
        for name, version in PINNED.items()
        if _version(name) != version
    ]
    wanted += [
        f"{name}=={version}"
        for name, version in IF_MISSING.items()
        if not _version(name)
    ]
    return wanted + (
        [] if _has_module("pkg_resources") else [SETUPTOOLS_WITH_PKG_RESOURCES]
    )


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def install(
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> List[str]:
    """Install what is missing with ``pip --no-deps`` and check the book's imports.

    Args:
        run: Runs a command (``subprocess.run`` by default; tests pass a recorder).

    Returns:
        Lines describing what was done, for the notebook to print.

    Raises:
        RuntimeError: pip failed, a kept package changed, or an import still fails;
            the message says which.
    """
    kept_before = {name: _version(name) for name in KEPT}
    requirements = packages_to_install()
    report = []
    if requirements:
        result = run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                *requirements,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not install {requirements}:\n{result.stderr[-2000:]}"
            )
        report.append(
            f"installed {len(requirements)} packages: " + ", ".join(requirements)
        )
    else:
        report.append("all packages already installed")
    importlib.invalidate_caches()

    changed = {
        name: (old, _version(name))
        for name, old in kept_before.items()
        if _version(name) != old
    }
    if changed:
        raise RuntimeError(
            "Installing changed packages that must stay as they are: "
            f"{changed}. Restart the runtime."
        )
    report.append(
        "kept "
        + ", ".join(
            f"{name} {version or 'absent'}" for name, version in kept_before.items()
        )
    )

    failed = []
    for module in IMPORTS:
        try:
            importlib.import_module(module)
        except Exception as e:  # report every failing import at once
            failed.append(f"{module}: {type(e).__name__}: {e}")
    if failed:
        raise RuntimeError(
            "These imports still fail after installing:\n" + "\n".join(failed)
        )
    report.append("no runtime restart needed")
    return report


if __name__ == "__main__":
    for line in install():
        print(line)
