"""Image augmentations for whole batches, made on the device with the array API.

Every function takes a batch of images, an array of the active backend of shape (N, H, W) or
(N, C, H, W) with a real floating dtype (float32 as the DataLoader gives them), and returns a
new array of the same shape, dtype and device; the input is never changed. Channels share their
image's transform. The random ones draw one set of parameters per image from ``generator``
(default: ``gd.device_rng()``, the active backend's seeded device generator), so the draws stay
on the device and ``gd.manual_seed`` makes them repeat. None of them is differentiable: they
make inputs.

Geometric transforms resample by bilinear interpolation, with pixel centres at integer
coordinates and ``fill`` outside the source image (zero: the background of MNIST-like images).
They are gathers (``xp.take``) at four neighbours per output pixel, so a batch costs a few
passes over its pixels. Names and parameters follow torchvision's ``transforms.v2``
(``RandomResizedCrop``, ``RandomAffine``, ``RandomErasing``, ``RandomHorizontalFlip``) and its
functional forms (``resized_crop``, ``affine``, ``erase``), with one difference: where
torchvision retries a rejected random box up to ten times on the host, these clip it into the
image, since a loop on drawn values would read them back from the device.

Every Python number among the arguments is checked before any work (finite; box sizes and
scales positive; ranges ordered; probabilities in [0, 1]) and refused with a ValueError that
names the function, the argument, the value and what was expected. Per-image arrays are not
read, since that would synchronise the device in a training step: only their shape is checked,
and a NaN or infinite source coordinate they lead to reads ``fill``, as a pixel outside the
image does.

    rng = gd.device_rng()
    for x, _ in loader:                                  # (N, 28, 28) float32 on the device
        view = augment.random_resized_crop(x.data, rng, scale=(0.4, 1.0))
        view = augment.random_affine(view, rng, degrees=15, translate=(0.1, 0.1))
        view = augment.random_erasing(view, rng, p=0.5)
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import device_rng
from .._checks import checked_number
from ..autograd import Array, Tensor, dtype_is, namespace_of
from ..backends import DeviceGenerator

PerImage = Any  # a Python number, or an (N,) array on the images' device


def _unwrap(images: Any, name: str) -> tuple[Any, Any]:
    """(array, xp) after checking the batch's rank and dtype; Tensors are read through .data."""
    array = images.data if isinstance(images, Tensor) else images
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        raise TypeError(f"{name}: images must be an array of the active backend; got {type(images).__name__}")
    xp = namespace_of(array)
    if array.ndim not in (3, 4):
        raise ValueError(f"{name}: images must have shape (N, H, W) or (N, C, H, W); got shape {tuple(array.shape)}")
    if not dtype_is(xp, array.dtype, "real floating"):
        raise TypeError(f"{name}: images must have a real floating dtype (float32 or float64); got {array.dtype}")
    return array, xp


def _number(name: str, what: str, value: Any, low: float = -math.inf, high: float | None = None,
            low_open: bool = False) -> float:
    """A Python number, finite and in [low, high] (above low with ``low_open``), as a float;
    ``Invalid {name} {what}: {value} (expected ...)`` otherwise."""
    return checked_number(value, f"{name} {what}", low, high, low_open=low_open)


def _per_image(xp, value: PerImage, images: Array, name: str, what: str, low: float = -math.inf,
               low_open: bool = False) -> Array:
    """``value`` as an (N, 1, 1) array of the images' dtype and device, for broadcasting; a
    number is checked as ``_number`` does, an array only for its shape (reading it would
    synchronise)."""
    n = images.shape[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "shape"):
        raise TypeError(f"{name}: {what} must be a number or an (N,) array; got {type(value).__name__}")
    if isinstance(value, (int, float)):
        number = _number(name, what, value, low, low_open=low_open)
        return xp.full((n, 1, 1), number, dtype=images.dtype, device=images.device)
    if tuple(value.shape) != (n,):
        raise ValueError(f"{name}: {what} must have shape ({n},), one value per image; got {tuple(value.shape)}")
    return xp.reshape(xp.astype(value, images.dtype), (n, 1, 1))


def _check_range(name: str, what: str, value: Any, low: float = -math.inf, high: float | None = None,
                 low_open: bool = False) -> tuple[float, float]:
    """A (min, max) pair of finite numbers with min <= max, each checked as ``_number`` does."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: {what} must be a pair of numbers (min, max); got {value!r}")
    first, second = (_number(name, f"{what}[{i}]", v, low, high, low_open) for i, v in enumerate(value))
    if first > second:
        raise ValueError(f"Invalid {name} {what}: {tuple(value)!r} (expected a pair (min, max) with min <= max)")
    return first, second


def _check_probability(name: str, p: Any) -> float:
    return _number(name, "p", p, 0.0, 1.0)


def _generator(generator, name: str):
    """``generator``, or the active backend's seeded device generator where it is None.

    Raises:
        TypeError: ``generator`` is not a device generator (a probability given in its place,
            torchvision-style, names the keyword to use).
    """
    if generator is None:
        return device_rng()
    if not isinstance(generator, DeviceGenerator):
        hint = ""
        if isinstance(generator, (int, float)) and not isinstance(generator, bool):
            hint = (f" (the second argument is the generator: give the other settings by name, e.g. {name}(images, "
                    "p=0.5))")
        raise TypeError(f"{name}: generator must be a device generator such as gd.device_rng() (or None for it); "
                        f"got {type(generator).__name__}{hint}")
    return generator


def _random_sides(generator, images: Array, name: str, scale: Any, ratio: Any) -> tuple[Array, Array]:
    """Per image, (sqrt(a * r), sqrt(a / r)) pixels for an area fraction a uniform in ``scale``
    and a ratio r log-uniform in ``ratio``: the sides of a box of area a * H * W whose first side
    is r times the second. Each is (N, 1, 1) of the images' dtype."""
    xp = namespace_of(images)
    low, high = _check_range(name, "scale", scale, 0.0, 1.0, low_open=True)
    ratio_low, ratio_high = _check_range(name, "ratio", ratio, 0.0, low_open=True)
    area = _uniform(generator, images, low, high) * float(images.shape[-2] * images.shape[-1])
    aspect = xp.exp(_uniform(generator, images, math.log(ratio_low), math.log(ratio_high)))
    return xp.sqrt(area * aspect), xp.sqrt(area / aspect)


def _uniform(generator, images: Array, low: float, high: float) -> Array:
    """One draw per image in [low, high), as (N, 1, 1) of the images' dtype."""
    return generator.uniform((images.shape[0], 1, 1), images.dtype, low, high)


def _same_kind(images: Any, result: Array) -> Any:
    return Tensor(result) if isinstance(images, Tensor) else result


# -- resampling ---------------------------------------------------------------------------------
def _warp(xp, images: Array, source_x: Array, source_y: Array, fill: float) -> Array:
    """Bilinear resampling: output pixel (i, j) of image n reads the source at the (fractional)
    column source_x[n, i, j] and row source_y[n, i, j]; outside the source it reads ``fill``.

    The four neighbours are gathered from the flattened batch with one index array each (the
    standard has no per-row gather); out-of-range neighbours get weight zero. A NaN coordinate
    (from a NaN or infinite per-image parameter, never read on the host) is moved outside the
    image, since its index would be undefined.
    """
    n, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    channels = images.shape[1] if images.ndim == 4 else 1
    source_x = xp.where(xp.isnan(source_x), xp.full_like(source_x, -2.0), source_x)
    source_y = xp.where(xp.isnan(source_y), xp.full_like(source_y, -2.0), source_y)
    flat = xp.reshape(images, (-1,))
    # (N, C, 1, 1): the first element of each channel plane in the flattened batch
    planes = xp.reshape(xp.arange(n * channels, dtype=xp.int64, device=images.device) * (height * width),
                        (n, channels, 1, 1))
    left, top = xp.floor(source_x), xp.floor(source_y)
    right_weight, bottom_weight = source_x - left, source_y - top
    result = None
    covered = None  # the weight that fell inside the image, for the fill
    for row, row_weight in ((top, 1.0 - bottom_weight), (top + 1.0, bottom_weight)):
        for column, column_weight in ((left, 1.0 - right_weight), (left + 1.0, right_weight)):
            inside = (row >= 0.0) & (row <= height - 1.0) & (column >= 0.0) & (column <= width - 1.0)
            weight = xp.where(inside, row_weight * column_weight, xp.zeros_like(row_weight))
            index = (xp.astype(xp.clip(row, 0.0, height - 1.0), xp.int64) * width
                     + xp.astype(xp.clip(column, 0.0, width - 1.0), xp.int64))
            index = xp.reshape(index, (n, 1, height, width)) + planes
            values = xp.reshape(xp.take(flat, xp.reshape(index, (-1,)), axis=0), (n, channels, height, width))
            term = values * xp.reshape(weight, (n, 1, height, width))
            result = term if result is None else result + term
            covered = weight if covered is None else covered + weight
    if fill != 0.0:
        result = result + fill * xp.reshape(1.0 - covered, (n, 1, height, width))
    return xp.reshape(result, images.shape)


def _box(xp, images: Array, name: str, top: PerImage, left: PerImage, height: PerImage,
         width: PerImage, empty: bool) -> list[Array]:
    """A box per image as four (N, 1, 1) arrays: top, left, height, width; the sizes positive,
    or non-negative where an ``empty`` box means something."""
    corner = [_per_image(xp, value, images, name, what) for what, value in (("top", top), ("left", left))]
    sizes = [_per_image(xp, value, images, name, what, 0.0, low_open=not empty)
             for what, value in (("height", height), ("width", width))]
    return corner + sizes


def _grid(xp, images: Array) -> tuple[Array, Array]:
    """(1, 1, W) column and (1, H, 1) row coordinates of the output pixels."""
    height, width = images.shape[-2], images.shape[-1]
    columns = xp.reshape(xp.arange(width, dtype=images.dtype, device=images.device), (1, 1, width))
    rows = xp.reshape(xp.arange(height, dtype=images.dtype, device=images.device), (1, height, 1))
    return columns, rows


# -- deterministic transforms -------------------------------------------------------------------
def affine(images: Any, angle: PerImage = 0.0, translate: tuple[PerImage, PerImage] = (0.0, 0.0),
           scale: PerImage = 1.0, fill: float = 0.0) -> Any:
    """Rotate, scale and shift each image about its centre, as torchvision's ``F.affine``.

    The content is rotated by ``angle`` degrees counter-clockwise (as displayed, row 0 at the
    top) and scaled by ``scale`` about the centre ((W - 1) / 2, (H - 1) / 2), then moved
    ``translate = (dx, dy)`` pixels right and down. A whole-pixel shift with angle 0 and scale 1
    moves every pixel exactly: output[..., i, j] = input[..., i - dy, j - dx].

    Args:
        images: (N, H, W) or (N, C, H, W), real floating; an array or a Tensor.
        angle: degrees, a finite number or an (N,) array (one per image).
        translate: (dx, dy) in pixels, each a finite number or an (N,) array.
        scale: positive finite factor, a number or an (N,) array.
        fill: value of pixels that come from outside the image, a finite number.
    Returns:
        a new batch of the same shape, dtype and device (a Tensor for a Tensor).
    Raises:
        TypeError: images not a floating array of rank 3 or 4, or a parameter of the wrong type.
        ValueError: a number out of its range (``Invalid affine scale: 0.0 (expected a finite
            number > 0)``), or a per-image array whose shape is not (N,).
    """
    name = "affine"
    array, xp = _unwrap(images, name)
    if not isinstance(translate, (tuple, list)) or len(translate) != 2:
        raise TypeError(f"{name}: translate must be a pair (dx, dy); got {translate!r}")
    fill = _number(name, "fill", fill)
    radians = _per_image(xp, angle, array, name, "angle") * (math.pi / 180.0)
    dx = _per_image(xp, translate[0], array, name, "translate[0]")
    dy = _per_image(xp, translate[1], array, name, "translate[1]")
    inverse_scale = 1.0 / _per_image(xp, scale, array, name, "scale", 0.0, low_open=True)
    columns, rows = _grid(xp, array)
    centre_x, centre_y = (array.shape[-1] - 1) / 2.0, (array.shape[-2] - 1) / 2.0
    # output -> source: undo the shift, then rotate by -angle and divide by the scale
    u, v = columns - centre_x - dx, rows - centre_y - dy
    cos, sin = xp.cos(radians) * inverse_scale, xp.sin(radians) * inverse_scale
    source_x = centre_x + cos * u - sin * v
    source_y = centre_y + sin * u + cos * v
    return _same_kind(images, _warp(xp, array, source_x, source_y, fill))


def resized_crop(images: Any, top: PerImage, left: PerImage, height: PerImage, width: PerImage,
                 fill: float = 0.0) -> Any:
    """Crop a box of each image and resize it to the whole image, as torchvision's
    ``F.resized_crop`` with the output size of the input.

    The box of image n has its top-left corner at row ``top``, column ``left`` and spans
    ``height`` x ``width`` pixels (fractions allowed); it is stretched over the H x W output by
    bilinear interpolation as ``F.interpolate(..., mode="bilinear", align_corners=False)``
    resizes the cropped image: output column j reads column left + (j + 0.5) * width / W - 0.5,
    clamped to [left, left + width - 1] (rows alike). The box (0, 0, H, W) returns the image
    unchanged; a whole-pixel box gives what torch's interpolate gives for the crop.

    Args:
        images: (N, H, W) or (N, C, H, W), real floating; an array or a Tensor.
        top, left, height, width: pixels, each a finite number or an (N,) array; height and
            width positive.
        fill: value of pixels that come from outside the image, a finite number.
    Returns:
        a new batch of the same shape, dtype and device (a Tensor for a Tensor).
    Raises:
        TypeError, ValueError: as ``affine`` (``Invalid resized_crop height: 0 (expected a
            finite number > 0)``).
    """
    name = "resized_crop"
    array, xp = _unwrap(images, name)
    fill = _number(name, "fill", fill)
    top, left, box_height, box_width = _box(xp, array, name, top, left, height, width, empty=False)
    columns, rows = _grid(xp, array)
    source_x = left + (columns + 0.5) * (box_width / float(array.shape[-1])) - 0.5
    source_y = top + (rows + 0.5) * (box_height / float(array.shape[-2])) - 0.5
    # the edge pixels would read half outside the box: clamp them to it, as resizing the
    # cropped image would (a box under a pixel wide reads its left or top edge)
    source_x = xp.minimum(xp.maximum(source_x, left), xp.maximum(left + box_width - 1.0, left))
    source_y = xp.minimum(xp.maximum(source_y, top), xp.maximum(top + box_height - 1.0, top))
    return _same_kind(images, _warp(xp, array, source_x, source_y, fill))


def erase(images: Any, top: PerImage, left: PerImage, height: PerImage, width: PerImage,
          value: float = 0.0) -> Any:
    """Set a box of each image to ``value``, as torchvision's ``F.erase``.

    Pixel (i, j) of image n is erased when top <= i < top + height and left <= j < left + width
    (per-image numbers; a box of height or width 0 erases nothing).

    Args:
        images: (N, H, W) or (N, C, H, W), real floating; an array or a Tensor.
        top, left, height, width: pixels, each a finite number or an (N,) array; height and
            width non-negative.
        value: what erased pixels become, a finite number.
    Returns:
        a new batch of the same shape, dtype and device (a Tensor for a Tensor).
    Raises:
        TypeError, ValueError: as ``affine`` (``Invalid erase value: nan (expected a finite
            number)``).
    """
    name = "erase"
    array, xp = _unwrap(images, name)
    value = _number(name, "value", value)
    top, left, box_height, box_width = _box(xp, array, name, top, left, height, width, empty=True)
    columns, rows = _grid(xp, array)
    inside = (rows >= top) & (rows < top + box_height) & (columns >= left) & (columns < left + box_width)
    if array.ndim == 4:
        inside = xp.reshape(inside, (inside.shape[0], 1, *inside.shape[1:]))
    return _same_kind(images, xp.where(inside, xp.full_like(array, value), array))


# -- random transforms --------------------------------------------------------------------------
def random_resized_crop(images: Any, generator=None, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0), fill: float = 0.0) -> Any:
    """A random box of each image, resized to the whole image (SimCLR's main augmentation;
    torchvision's ``RandomResizedCrop`` with the input's size).

    Per image: an area fraction uniform in ``scale`` and an aspect ratio (width / height)
    log-uniform in ``ratio`` give the box's size; a side longer than the image is clipped to it;
    the box's position is uniform among those inside the image. Boxes keep fractional sizes and
    positions (bilinear resampling), where torchvision rounds them and retries.

    Args:
        images: (N, H, W) or (N, C, H, W), real floating, on the generator's device.
        generator: a device generator (``gd.device_rng()``, the default).
        scale: (min, max) fraction of the image's area, within (0, 1].
        ratio: (min, max) width / height, positive.
        fill: value of pixels from outside the image (only rounding can reach there), a finite
            number.
    Returns:
        a new batch of the same shape, dtype and device (a Tensor for a Tensor).
    Raises:
        TypeError, ValueError: bad images, ranges or fill (``Invalid random_resized_crop
            scale[1]: 1.5 (expected a value in (0, 1])``).
    """
    name = "random_resized_crop"
    array, xp = _unwrap(images, name)
    fill = _number(name, "fill", fill)
    generator = _generator(generator, name)
    height, width = float(array.shape[-2]), float(array.shape[-1])
    box_width, box_height = _random_sides(generator, array, name, scale, ratio)  # ratio: width / height
    box_width, box_height = xp.clip(box_width, 1.0, width), xp.clip(box_height, 1.0, height)
    top = _uniform(generator, array, 0.0, 1.0) * (height - box_height)
    left = _uniform(generator, array, 0.0, 1.0) * (width - box_width)
    n = array.shape[0]
    box = [xp.reshape(b, (n,)) for b in (top, left, box_height, box_width)]
    return _same_kind(images, resized_crop(array, *box, fill=fill))


def _symmetric(name: str, what: str, value: Any) -> tuple[float, float]:
    """torchvision's spelling of a range: a number d means (-d, d)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = _number(name, what, value, 0.0)
        return -number, number
    return _check_range(name, what, value)


def random_affine(images: Any, generator=None, degrees: Any = 0.0, translate: tuple[float, float] | None = None,
                  scale: tuple[float, float] | None = None, fill: float = 0.0) -> Any:
    """Rotate, shift and scale each image by random amounts (torchvision's ``RandomAffine``).

    Per image: an angle uniform in ``degrees`` (d means (-d, d)), a shift uniform in
    [-tx * W, tx * W] x [-ty * H, ty * H] pixels for ``translate = (tx, ty)``, and a scale
    uniform in ``scale``; then ``affine``. Shifts keep their fractions (bilinear resampling).

    Args:
        images: (N, H, W) or (N, C, H, W), real floating, on the generator's device.
        generator: a device generator (``gd.device_rng()``, the default).
        degrees: a non-negative finite number d, or (min, max) in degrees counter-clockwise.
        translate: (tx, ty), fractions of the width and height in [0, 1]; None: no shift.
        scale: (min, max) positive finite factors; None: no scaling.
        fill: value of pixels that come from outside the image, a finite number.
    Returns:
        a new batch of the same shape, dtype and device (a Tensor for a Tensor).
    Raises:
        TypeError, ValueError: bad images, ranges or fill (``Invalid random_affine degrees: nan
            (expected a finite number >= 0)``).
    """
    name = "random_affine"
    array, xp = _unwrap(images, name)
    angle_low, angle_high = _symmetric(name, "degrees", degrees)
    if translate is not None:
        if not isinstance(translate, (tuple, list)) or len(translate) != 2:
            raise TypeError(f"{name}: translate must be a pair (tx, ty); got {translate!r}")
        tx, ty = (_number(name, f"translate[{i}]", t, 0.0, 1.0) for i, t in enumerate(translate))
    scale_low, scale_high = (1.0, 1.0) if scale is None else _check_range(name, "scale", scale, 0.0, low_open=True)
    fill = _number(name, "fill", fill)
    generator = _generator(generator, name)
    n = array.shape[0]

    def draw(low: float, high: float) -> PerImage:
        return low if low == high else xp.reshape(_uniform(generator, array, low, high), (n,))

    angle = draw(angle_low, angle_high)
    shift = (0.0, 0.0)
    if translate is not None:
        shift = (draw(-tx * array.shape[-1], tx * array.shape[-1]), draw(-ty * array.shape[-2], ty * array.shape[-2]))
    return _same_kind(images, affine(array, angle, shift, draw(scale_low, scale_high), fill=fill))


def random_erasing(images: Any, generator=None, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                   ratio: tuple[float, float] = (0.3, 3.3), value: float = 0.0) -> Any:
    """Erase a random box of each image with probability ``p`` (Zhong et al., 2020, "Random
    Erasing Data Augmentation"; torchvision's ``RandomErasing``).

    Per image: an area fraction uniform in ``scale`` and an aspect ratio (height / width)
    log-uniform in ``ratio`` give the box, rounded to whole pixels and clipped into the image;
    its position is uniform among the whole-pixel positions inside the image; its pixels become
    ``value``.

    Args:
        images: (N, H, W) or (N, C, H, W), real floating, on the generator's device.
        generator: a device generator (``gd.device_rng()``, the default).
        p: probability that an image is erased, in [0, 1].
        scale: (min, max) fraction of the image's area, within (0, 1].
        ratio: (min, max) height / width, positive.
        value: what erased pixels become, a finite number.
    Returns:
        a new batch of the same shape, dtype and device (a Tensor for a Tensor).
    Raises:
        TypeError, ValueError: bad images, probability, ranges or value (``Invalid
            random_erasing p: 2 (expected a value in [0, 1])``).
    """
    name = "random_erasing"
    array, xp = _unwrap(images, name)
    p = _check_probability(name, p)
    value = _number(name, "value", value)
    generator = _generator(generator, name)
    height, width = float(array.shape[-2]), float(array.shape[-1])
    box_height, box_width = _random_sides(generator, array, name, scale, ratio)  # ratio: height / width
    box_height = xp.clip(xp.round(box_height), 1.0, height)
    box_width = xp.clip(xp.round(box_width), 1.0, width)
    # floor(u * (free + 1)) is uniform over the free + 1 whole-pixel positions (u < 1)
    top = xp.floor(_uniform(generator, array, 0.0, 1.0) * (height - box_height + 1.0))
    left = xp.floor(_uniform(generator, array, 0.0, 1.0) * (width - box_width + 1.0))
    chosen = generator.bernoulli(p, (array.shape[0], 1, 1), array.dtype)
    n = array.shape[0]
    box = [xp.reshape(b, (n,)) for b in (top, left, box_height * chosen, box_width)]
    return _same_kind(images, erase(array, *box, value=value))


def _jitter_range(name: str, what: str, value: Any) -> tuple[float, float] | None:
    """torchvision's spelling of a jitter: a number j means factors in [max(0, 1 - j), 1 + j]."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = _number(name, what, value, 0.0)
        return None if number == 0.0 else (max(0.0, 1.0 - number), 1.0 + number)
    return _check_range(name, what, value, 0.0)


def color_jitter(images: Any, generator=None, brightness: Any = 0.0, contrast: Any = 0.0) -> Any:
    """Change each image's brightness and contrast by random factors (torchvision's
    ``ColorJitter`` for its brightness and contrast), for images with values in [0, 1].

    Per image: the pixels are multiplied by a brightness factor, then moved away from (or
    towards) the image's mean by a contrast factor, (x - mean) * c + mean, the mean taken over
    all its channels and pixels; each result is clipped to [0, 1]. Brightness comes first
    (torchvision draws a random order).

    Args:
        images: (N, H, W) or (N, C, H, W), real floating, values in [0, 1], on the generator's
            device.
        generator: a device generator (``gd.device_rng()``, the default).
        brightness: finite j >= 0 for factors uniform in [max(0, 1 - j), 1 + j], or (min, max)
            with 0 <= min <= max, finite; 0: none.
        contrast: as brightness.
    Returns:
        a new batch of the same shape, dtype and device (a Tensor for a Tensor).
    Raises:
        TypeError, ValueError: bad images or ranges (``Invalid color_jitter brightness: nan
            (expected a finite number >= 0)``).
    """
    name = "color_jitter"
    array, xp = _unwrap(images, name)
    ranges = (_jitter_range(name, "brightness", brightness), _jitter_range(name, "contrast", contrast))
    generator = _generator(generator, name)
    shape = (array.shape[0],) + (1,) * (array.ndim - 1)
    result = array
    for index, bounds in enumerate(ranges):
        if bounds is None:
            continue
        factor = generator.uniform(shape, array.dtype, *bounds)
        if index == 0:
            result = result * factor
        else:
            mean = xp.reshape(xp.mean(xp.reshape(result, (array.shape[0], -1)), axis=1), shape)
            result = (result - mean) * factor + mean
        result = xp.clip(result, 0.0, 1.0)
    return _same_kind(images, result if result is not array else xp.asarray(array, copy=True))


def random_horizontal_flip(images: Any, generator=None, p: float = 0.5) -> Any:
    """Mirror each image left to right with probability ``p`` (torchvision's
    ``RandomHorizontalFlip``).

    Args:
        images: (N, H, W) or (N, C, H, W), real floating, on the generator's device.
        generator: a device generator (``gd.device_rng()``, the default).
        p: probability that an image is flipped, in [0, 1].
    Returns:
        a new batch of the same shape, dtype and device (a Tensor for a Tensor).
    Raises:
        TypeError, ValueError: bad images or probability (``Invalid random_horizontal_flip p:
            -0.1 (expected a value in [0, 1])``).
    """
    name = "random_horizontal_flip"
    array, xp = _unwrap(images, name)
    p = _check_probability(name, p)
    flip = _generator(generator, name).bernoulli(p, (array.shape[0],) + (1,) * (array.ndim - 1), array.dtype)
    return _same_kind(images, xp.where(flip > 0.5, xp.flip(array, axis=-1), array))


__all__ = [
    "affine", "color_jitter", "erase", "random_affine", "random_erasing", "random_horizontal_flip",
    "random_resized_crop", "resized_crop",
]
