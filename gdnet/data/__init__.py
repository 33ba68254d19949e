"""Data: IDX files, datasets held as host arrays, and a device-aware DataLoader.

    train, test = gd.data.fashion_mnist()
    loader = gd.data.DataLoader(train, batch_size=64, shuffle=True)
    for images, labels in loader:   # float32 (64, 28, 28) in [0, 1], int64 (64,), on the device
        ...
    views = gd.data.augment.random_resized_crop(images.data, gd.device_rng())  # batch augmentations
"""

from . import augment, datasets
from .datasets import (
    ArrayDataset,
    DatasetDownloadError,
    DatasetNotFoundError,
    fashion_mnist,
    mnist,
)
from .idx import IDXFormatError, read_idx, write_idx
from .loader import DataLoader

__all__ = [
    "ArrayDataset", "DataLoader", "DatasetDownloadError", "DatasetNotFoundError",
    "IDXFormatError", "augment", "datasets", "fashion_mnist", "mnist", "read_idx", "write_idx",
]
