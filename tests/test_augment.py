"""gdnet.data.augment: batch image augmentations made on the device, on every backend row."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gdnet as gd
from gdnet.data import augment

H, W = 12, 12


def on_device(backend, host, dtype="float32"):
    return backend.asarray(np.asarray(host), dtype=getattr(backend.xp, dtype))


def host(array) -> np.ndarray:
    return gd.backends.host.to_numpy(array)


def ramps(n: int) -> np.ndarray:
    """(n, 2, H, W): channel 0 holds each pixel's column, channel 1 its row."""
    rows, columns = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    return np.broadcast_to(np.stack([columns, rows]).astype(np.float32), (n, 2, H, W)).copy()


def random_images(*shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


# every random transform, with arguments that make it act on every image
RANDOM = {
    "random_resized_crop": lambda x, g: augment.random_resized_crop(x, g, scale=(0.3, 1.0)),
    "random_affine": lambda x, g: augment.random_affine(x, g, degrees=20, translate=(0.2, 0.1), scale=(0.8, 1.2)),
    "random_erasing": lambda x, g: augment.random_erasing(x, g, p=1.0),
    "random_horizontal_flip": lambda x, g: augment.random_horizontal_flip(x, g, p=0.5),
    "color_jitter": lambda x, g: augment.color_jitter(x, g, brightness=0.4, contrast=0.4),
}
FIXED = {
    "affine": lambda x: augment.affine(x, angle=30.0, translate=(1.5, -2.0), scale=1.1),
    "resized_crop": lambda x: augment.resized_crop(x, 1.0, 2.0, 6.5, 7.0),
    "erase": lambda x: augment.erase(x, 2, 3, 4, 5, value=0.5),
}


# -- what every transform keeps ------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, H, W), (3, 2, H, W)], ids=["NHW", "NCHW"])
@pytest.mark.parametrize("name", [*RANDOM, *FIXED])
def test_shape_dtype_and_device_are_kept(backend, float_dtype, name, shape):
    source = random_images(*shape)
    for dtype in {"float32", float_dtype}:
        images = on_device(backend, source, dtype)
        out = RANDOM[name](images, gd.device_rng()) if name in RANDOM else FIXED[name](images)
        assert tuple(out.shape) == shape
        assert out.dtype == images.dtype
        assert out.device == images.device
        np.testing.assert_array_equal(host(images), source.astype(dtype))  # the input is not changed


@pytest.mark.parametrize("name", list(RANDOM))
def test_a_seed_repeats_the_draws(backend, name):
    images = on_device(backend, random_images(8, H, W))
    runs = []
    for seed in (3, 3, 4):
        gd.manual_seed(seed)
        runs.append(host(RANDOM[name](images, gd.device_rng())))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    assert not np.array_equal(runs[0], host(images))  # it did something


@pytest.mark.parametrize("name", list(RANDOM))
def test_the_default_generator_is_the_active_backends(backend, name):
    images = on_device(backend, random_images(4, H, W))
    gd.manual_seed(5)
    given = host(RANDOM[name](images, gd.device_rng()))
    gd.manual_seed(5)
    np.testing.assert_array_equal(host(RANDOM[name](images, None)), given)


@pytest.mark.parametrize("name", list(RANDOM))
def test_channels_share_their_images_transform(backend, name):
    plane = random_images(4, H, W)
    images = on_device(backend, np.stack([plane, plane], axis=1))
    out = host(RANDOM[name](images, gd.device_rng()))
    np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_a_tensor_in_gives_a_tensor_out(backend):
    images = gd.Tensor(on_device(backend, random_images(2, H, W)))
    out = augment.random_affine(images, degrees=10)
    assert isinstance(out, gd.Tensor) and not out.requires_grad
    assert out.shape == images.shape


# -- each does what it says ----------------------------------------------------------------------
def test_a_whole_pixel_shift_moves_every_pixel_by_that_many(backend):
    source = random_images(3, 2, H, W)
    dx, dy = np.array([2.0, -3.0, 0.0]), np.array([1.0, 0.0, -4.0])
    out = host(augment.affine(on_device(backend, source), translate=(on_device(backend, dx), on_device(backend, dy))))
    for n in range(3):
        a, b = int(dx[n]), int(dy[n])
        want = np.zeros((2, H, W), np.float32)
        want[:, max(b, 0):H + min(b, 0), max(a, 0):W + min(a, 0)] = \
            source[n, :, max(-b, 0):H - max(b, 0), max(-a, 0):W - max(a, 0)]
        np.testing.assert_array_equal(out[n], want)


def test_a_quarter_turn_is_rot90_counter_clockwise(backend):
    source = random_images(2, H, W)
    out = host(augment.affine(on_device(backend, source), angle=90.0))
    np.testing.assert_allclose(out, np.rot90(source, k=1, axes=(1, 2)), atol=1e-5)


def test_affine_matches_torch_grid_sample(backend):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    source = random_images(4, 2, H, W)
    angle, scale = np.array([0.0, 17.0, -33.0, 120.0]), np.array([1.0, 0.8, 1.3, 1.0])
    tx, ty = np.array([0.0, 1.5, -2.25, 0.5]), np.array([0.0, -0.75, 3.0, 1.0])
    out = host(augment.affine(on_device(backend, source), angle=on_device(backend, angle),
                              translate=(on_device(backend, tx), on_device(backend, ty)),
                              scale=on_device(backend, scale)))
    # the same map in the normalised coordinates of affine_grid (pixel centres at -1 and 1, a
    # square image): source = R(angle)^-1 (output - shift) / scale
    c = (W - 1) / 2.0
    cos, sin = np.cos(np.radians(angle)) / scale, np.sin(np.radians(angle)) / scale
    theta = np.stack([np.stack([cos, -sin, -(cos * tx - sin * ty) / c], axis=1),
                      np.stack([sin, cos, -(sin * tx + cos * ty) / c], axis=1)], axis=1)
    grid = F.affine_grid(torch.tensor(theta), (4, 2, H, W), align_corners=True)
    want = F.grid_sample(torch.tensor(source, dtype=torch.float64), grid, mode="bilinear",
                         padding_mode="zeros", align_corners=True)
    np.testing.assert_allclose(out, want.numpy(), atol=1e-5)


def test_affine_fill_is_the_value_outside_the_image(backend):
    out = host(augment.affine(on_device(backend, np.ones((1, H, W))), translate=(3.0, 0.0), fill=0.25))
    np.testing.assert_allclose(out[0, :, :3], 0.25)
    np.testing.assert_allclose(out[0, :, 3:], 1.0)


def test_resized_crop_stretches_its_box_over_the_image(backend):
    source = ramps(2)
    top, left = np.array([0.0, 2.0]), np.array([0.0, 1.5])
    height, width = np.array([H, 6.0]), np.array([W, 8.0])
    box = [on_device(backend, v) for v in (top, left, height, width)]
    out = host(augment.resized_crop(on_device(backend, source), *box))
    np.testing.assert_allclose(out[0], source[0], atol=1e-5)  # the whole image: unchanged
    # a ramp stays a ramp: output pixel j reads column left + (j + 0.5) * width / W - 0.5,
    # clamped to the box
    columns = np.clip(1.5 + (np.arange(W) + 0.5) * 8.0 / W - 0.5, 1.5, 1.5 + 8.0 - 1.0)
    rows = np.clip(2.0 + (np.arange(H) + 0.5) * 6.0 / H - 0.5, 2.0, 2.0 + 6.0 - 1.0)
    np.testing.assert_allclose(out[1, 0], np.broadcast_to(columns, (H, W)), atol=1e-5)
    np.testing.assert_allclose(out[1, 1], np.broadcast_to(rows[:, None], (H, W)), atol=1e-5)


def test_resized_crop_of_a_whole_pixel_box_matches_torch_interpolate(backend):
    torch = pytest.importorskip("torch")
    source = random_images(3, 2, H, W)
    boxes = [(0, 0, H, W), (2, 3, 5, 7), (4, 0, 8, 3)]
    columns = [on_device(backend, np.array([b[i] for b in boxes], np.float64)) for i in range(4)]
    out = host(augment.resized_crop(on_device(backend, source), *columns))
    for n, (top, left, height, width) in enumerate(boxes):
        crop = torch.tensor(source[n:n + 1, :, top:top + height, left:left + width], dtype=torch.float64)
        want = torch.nn.functional.interpolate(crop, size=(H, W), mode="bilinear", align_corners=False)
        np.testing.assert_allclose(out[n], want[0].numpy(), atol=1e-5)


def test_erase_sets_exactly_its_box(backend):
    source = random_images(2, 2, H, W)
    top, left, height, width = np.array([1.0, 0.0]), np.array([2.0, 5.0]), np.array([3.0, 0.0]), np.array([4.0, 2.0])
    out = host(augment.erase(on_device(backend, source), *(on_device(backend, v) for v in (top, left, height, width)),
                             value=-1.0))
    want = source.copy()
    want[0, :, 1:4, 2:6] = -1.0  # the second box has no rows: nothing erased
    np.testing.assert_array_equal(out, want)


def test_random_resized_crop_boxes_have_the_asked_area_and_ratio(backend):
    n = 64
    out = host(augment.random_resized_crop(on_device(backend, ramps(n)), scale=(0.25, 0.5), ratio=(0.75, 4.0 / 3.0)))
    # on the ramps the box's width / W is the slope between pixels that clamping leaves alone
    width = (out[:, 0, H // 2, W - 3] - out[:, 0, H // 2, 2]) / (W - 5) * W
    height = (out[:, 1, H - 3, W // 2] - out[:, 1, 2, W // 2]) / (H - 5) * H
    area = width * height / (H * W)
    assert np.all(area >= 0.25 - 1e-4) and np.all(area <= 0.5 + 1e-4)
    assert np.all(width / height >= 0.75 - 1e-4) and np.all(width / height <= 4.0 / 3.0 + 1e-4)
    # every box lies inside the image; pixel 2 reads left + 2.5 * width / W - 0.5
    left = out[:, 0, H // 2, 2] - 2.5 * width / W + 0.5
    top = out[:, 1, 2, W // 2] - 2.5 * height / H + 0.5
    assert np.all(left >= -1e-4) and np.all(left + width <= W + 1e-4)
    assert np.all(top >= -1e-4) and np.all(top + height <= H + 1e-4)
    assert len(np.unique(np.round(area, 4))) > n // 2  # one box per image


def test_random_resized_crop_of_the_whole_image_is_the_identity(backend):
    source = random_images(3, H, W)
    out = host(augment.random_resized_crop(on_device(backend, source), scale=(1.0, 1.0), ratio=(1.0, 1.0)))
    np.testing.assert_allclose(out, source, atol=1e-5)


def test_random_affine_stays_within_its_ranges(backend):
    n, degrees = 64, 25.0
    out = host(augment.random_affine(on_device(backend, ramps(n)), degrees=degrees))
    centre = (slice(H // 2 - 1, H // 2 + 1), slice(W // 2 - 1, W // 2 + 1))  # never reads outside
    dx = np.diff(out[:, 0], axis=2)[:, centre[0], centre[1]].mean(axis=(1, 2))
    dy = np.diff(out[:, 0], axis=1)[:, centre[0], centre[1]].mean(axis=(1, 2))
    angles = np.degrees(np.arctan2(-dy, dx))  # the column ramp's gradient is (cos, -sin)
    assert np.all(np.abs(angles) <= degrees + 1e-3) and angles.max() - angles.min() > degrees
    shifted = host(augment.random_affine(on_device(backend, ramps(n)), translate=(0.25, 0.0)))
    shift = (ramps(n) - shifted)[:, 0, :, W // 2]  # how far right column W/2 moved, per row
    assert np.all(np.abs(shift) <= 0.25 * W + 1e-4) and shift.std(axis=1).max() < 1e-4
    np.testing.assert_allclose(shifted[:, 1, :, W // 2], ramps(n)[:, 1, :, W // 2], atol=1e-5)  # no vertical shift


def test_random_erasing_erases_one_box_per_chosen_image(backend):
    n = 200
    ones = on_device(backend, np.ones((n, H, W)))
    out = host(augment.random_erasing(ones, p=1.0, scale=(0.05, 0.2), ratio=(0.5, 2.0), value=0.0))
    for image in out:
        rows, columns = np.nonzero(image == 0.0)
        box_rows, box_columns = rows.max() - rows.min() + 1, columns.max() - columns.min() + 1
        assert len(rows) == box_rows * box_columns  # one filled rectangle
        assert 0.05 * H * W / 2 <= len(rows) <= 0.2 * H * W * 1.5  # rounding to whole pixels
    kept = host(augment.random_erasing(ones, p=0.0))
    np.testing.assert_array_equal(kept, 1.0)
    half = host(augment.random_erasing(ones, p=0.5)).min(axis=(1, 2))
    assert 60 < int((half == 0.0).sum()) < 140


def test_random_horizontal_flip_flips_whole_images(backend):
    source = random_images(100, H, W)
    out = host(augment.random_horizontal_flip(on_device(backend, source), p=0.5))
    flipped = np.array([np.array_equal(o, s[:, ::-1]) for o, s in zip(out, source)])
    kept = np.array([np.array_equal(o, s) for o, s in zip(out, source)])
    assert np.all(flipped ^ kept) and 30 < flipped.sum() < 70
    np.testing.assert_array_equal(host(augment.random_horizontal_flip(on_device(backend, source), p=1.0)),
                                  source[:, :, ::-1])


def test_color_jitter_scales_brightness_and_contrast_within_range(backend):
    source = 0.2 + 0.5 * random_images(32, H, W)  # in [0.2, 0.7]: a factor in [0.7, 1.3] clips nothing
    brighter = host(augment.color_jitter(on_device(backend, source), brightness=0.3))
    factors = brighter / source
    np.testing.assert_allclose(factors, factors[:, :1, :1] * np.ones_like(factors), rtol=1e-5)
    assert factors.min() >= 0.7 - 1e-5 and factors.max() <= 1.3 + 1e-5
    contrasted = host(augment.color_jitter(on_device(backend, source), contrast=0.3))
    mean = source.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(contrasted.mean(axis=(1, 2), keepdims=True), mean, atol=1e-5)
    factors = (contrasted - mean) / (source - mean)
    assert factors.min() >= 0.7 - 1e-3 and factors.max() <= 1.3 + 1e-3
    clipped = host(augment.color_jitter(on_device(backend, np.ones((8, H, W))), brightness=(1.5, 2.0)))
    np.testing.assert_array_equal(clipped, 1.0)


# -- bad input -------------------------------------------------------------------------------------
BAD = [
    (lambda x: augment.affine([[[0.0]]]), TypeError, "array of the active backend"),
    (lambda x: augment.affine(x[0, ...]), ValueError, r"shape \(N, H, W\) or \(N, C, H, W\)"),
    (lambda x: augment.random_resized_crop(x, scale=0.5), TypeError, r"pair of numbers"),
    (lambda x: augment.random_affine(x, translate=0.5), TypeError, r"translate must be a pair \(tx, ty\)"),
    (lambda x: augment.affine(x, angle="90"), TypeError, "angle must be a number or an"),
    (lambda x: augment.affine(x, translate=3.0), TypeError, r"translate must be a pair \(dx, dy\)"),
    (lambda x: augment.affine(x, fill=None), TypeError, r"Invalid affine fill: None \(expected a real number\)"),
    (lambda x: augment.erase(x, 0, 0, 2, 2, value="0"), TypeError, r"Invalid erase value: '0' \(expected a real"),
    (lambda x: augment.random_erasing(x, p="1"), TypeError, r"Invalid random_erasing p: '1' \(expected a real"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[b[2] for b in BAD])
def test_bad_input_is_a_clear_error(backend, call, error, message):
    with pytest.raises(error, match=message):
        call(on_device(backend, np.zeros((2, H, W))))


NAN, INF = math.nan, math.inf
FINITE, NON_NEGATIVE, POSITIVE = r"a finite number\)", r"a finite number >= 0\)", r"a finite number > 0\)"
UNIT, OPEN_UNIT, ORDERED = r"a value in \[0, 1\]\)", r"a value in \(0, 1\]\)", r"a pair \(min, max\) with min <= max\)"
# every numeric argument of every function: (call, the start of the message, what it expects)
BAD_NUMBERS = [
    (lambda x: augment.affine(x, angle=NAN), "affine angle: nan", FINITE),
    (lambda x: augment.affine(x, angle=INF), "affine angle: inf", FINITE),
    (lambda x: augment.affine(x, translate=(NAN, 0.0)), r"affine translate\[0\]: nan", FINITE),
    (lambda x: augment.affine(x, translate=(0.0, -INF)), r"affine translate\[1\]: -inf", FINITE),
    (lambda x: augment.affine(x, scale=0.0), "affine scale: 0.0", POSITIVE),
    (lambda x: augment.affine(x, scale=-1.0), "affine scale: -1.0", POSITIVE),
    (lambda x: augment.affine(x, scale=NAN), "affine scale: nan", POSITIVE),
    (lambda x: augment.affine(x, scale=INF), "affine scale: inf", POSITIVE),
    (lambda x: augment.affine(x, fill=NAN), "affine fill: nan", FINITE),
    (lambda x: augment.resized_crop(x, 0, 0, 0, 0), "resized_crop height: 0", POSITIVE),
    (lambda x: augment.resized_crop(x, 0, 0, 4, -2), "resized_crop width: -2", POSITIVE),
    (lambda x: augment.resized_crop(x, 0, 0, INF, 4), "resized_crop height: inf", POSITIVE),
    (lambda x: augment.resized_crop(x, NAN, 0, 4, 4), "resized_crop top: nan", FINITE),
    (lambda x: augment.resized_crop(x, 0, -INF, 4, 4), "resized_crop left: -inf", FINITE),
    (lambda x: augment.resized_crop(x, 0, 0, 4, 4, fill=INF), "resized_crop fill: inf", FINITE),
    (lambda x: augment.erase(x, 0, 0, -1, 2), "erase height: -1", NON_NEGATIVE),
    (lambda x: augment.erase(x, 0, 0, 2, NAN), "erase width: nan", NON_NEGATIVE),
    (lambda x: augment.erase(x, INF, 0, 2, 2), "erase top: inf", FINITE),
    (lambda x: augment.erase(x, 0, NAN, 2, 2), "erase left: nan", FINITE),
    (lambda x: augment.erase(x, 0, 0, 2, 2, value=NAN), "erase value: nan", FINITE),
    (lambda x: augment.random_resized_crop(x, scale=(NAN, 1.0)), r"random_resized_crop scale\[0\]: nan", OPEN_UNIT),
    (lambda x: augment.random_resized_crop(x, scale=(0.5, 1.5)), r"random_resized_crop scale\[1\]: 1.5", OPEN_UNIT),
    (lambda x: augment.random_resized_crop(x, scale=(0.0, 1.0)), r"random_resized_crop scale\[0\]: 0.0", OPEN_UNIT),
    (lambda x: augment.random_resized_crop(x, scale=(0.8, 0.5)), r"random_resized_crop scale: \(0.8, 0.5\)", ORDERED),
    (lambda x: augment.random_resized_crop(x, ratio=(0.0, 1.0)), r"random_resized_crop ratio\[0\]: 0.0", POSITIVE),
    (lambda x: augment.random_resized_crop(x, ratio=(1.0, INF)), r"random_resized_crop ratio\[1\]: inf", POSITIVE),
    (lambda x: augment.random_resized_crop(x, ratio=(2.0, 1.0)), r"random_resized_crop ratio: \(2.0, 1.0\)", ORDERED),
    (lambda x: augment.random_resized_crop(x, fill=NAN), "random_resized_crop fill: nan", FINITE),
    (lambda x: augment.random_affine(x, degrees=NAN), "random_affine degrees: nan", NON_NEGATIVE),
    (lambda x: augment.random_affine(x, degrees=-1), "random_affine degrees: -1", NON_NEGATIVE),
    (lambda x: augment.random_affine(x, degrees=INF), "random_affine degrees: inf", NON_NEGATIVE),
    (lambda x: augment.random_affine(x, degrees=(-10, NAN)), r"random_affine degrees\[1\]: nan", FINITE),
    (lambda x: augment.random_affine(x, degrees=(10, -10)), r"random_affine degrees: \(10, -10\)", ORDERED),
    (lambda x: augment.random_affine(x, translate=(0.5, 2.0)), r"random_affine translate\[1\]: 2.0", UNIT),
    (lambda x: augment.random_affine(x, translate=(NAN, 0.5)), r"random_affine translate\[0\]: nan", UNIT),
    (lambda x: augment.random_affine(x, scale=(1.2, 0.8)), r"random_affine scale: \(1.2, 0.8\)", ORDERED),
    (lambda x: augment.random_affine(x, scale=(0.0, 1.0)), r"random_affine scale\[0\]: 0.0", POSITIVE),
    (lambda x: augment.random_affine(x, scale=(0.5, NAN)), r"random_affine scale\[1\]: nan", POSITIVE),
    (lambda x: augment.random_affine(x, fill=NAN), "random_affine fill: nan", FINITE),
    (lambda x: augment.random_erasing(x, p=1.5), "random_erasing p: 1.5", UNIT),
    (lambda x: augment.random_erasing(x, p=NAN), "random_erasing p: nan", UNIT),
    (lambda x: augment.random_erasing(x, scale=(0.5, 0.2)), r"random_erasing scale: \(0.5, 0.2\)", ORDERED),
    (lambda x: augment.random_erasing(x, scale=(INF, 0.2)), r"random_erasing scale\[0\]: inf", OPEN_UNIT),
    (lambda x: augment.random_erasing(x, ratio=(-1.0, 2.0)), r"random_erasing ratio\[0\]: -1.0", POSITIVE),
    (lambda x: augment.random_erasing(x, ratio=(3.0, 0.3)), r"random_erasing ratio: \(3.0, 0.3\)", ORDERED),
    (lambda x: augment.random_erasing(x, value=NAN), "random_erasing value: nan", FINITE),
    (lambda x: augment.random_horizontal_flip(x, p=-0.1), "random_horizontal_flip p: -0.1", UNIT),
    (lambda x: augment.random_horizontal_flip(x, p=NAN), "random_horizontal_flip p: nan", UNIT),
    (lambda x: augment.color_jitter(x, brightness=NAN), "color_jitter brightness: nan", NON_NEGATIVE),
    (lambda x: augment.color_jitter(x, brightness=-0.2), "color_jitter brightness: -0.2", NON_NEGATIVE),
    (lambda x: augment.color_jitter(x, contrast=INF), "color_jitter contrast: inf", NON_NEGATIVE),
    (lambda x: augment.color_jitter(x, contrast=(-0.5, 1.0)), r"color_jitter contrast\[0\]: -0.5", NON_NEGATIVE),
    (lambda x: augment.color_jitter(x, brightness=(0.5, NAN)), r"color_jitter brightness\[1\]: nan", NON_NEGATIVE),
    (lambda x: augment.color_jitter(x, brightness=(1.5, 0.5)), r"color_jitter brightness: \(1.5, 0.5\)", ORDERED),
]


@pytest.mark.parametrize("call, value, expected", BAD_NUMBERS, ids=[b[1].replace("\\", "") for b in BAD_NUMBERS])
def test_a_number_out_of_its_range_is_refused_up_front(backend, call, value, expected):
    with pytest.raises(ValueError, match=rf"^Invalid {value} \(expected {expected}$"):
        call(on_device(backend, np.zeros((2, H, W))))


def test_the_edges_of_each_range_are_accepted(backend):
    images = on_device(backend, random_images(2, H, W))
    for out in (augment.erase(images, -3, -3, 0, 0), augment.random_erasing(images, p=0.0, scale=(1.0, 1.0)),
                augment.random_horizontal_flip(images, p=0.0), augment.color_jitter(images, brightness=(0.0, 0.0))):
        assert tuple(out.shape) == (2, H, W)
    np.testing.assert_array_equal(host(augment.erase(images, -3, -3, 0, 0)), host(images))  # an empty box
    np.testing.assert_array_equal(host(augment.random_horizontal_flip(images, p=0.0)), host(images))
    np.testing.assert_array_equal(host(augment.color_jitter(images, brightness=(0.0, 0.0))), 0.0)


def test_a_nan_from_a_per_image_array_reads_fill_instead_of_a_wild_index(backend):
    # per-image arrays are not read on the host (that would synchronise), so a NaN angle or a
    # zero scale there reaches the resampler: its pixels read fill, the other images are exact
    source = random_images(3, 2, H, W)
    images = on_device(backend, source)
    angle, scale = on_device(backend, np.array([NAN, 0.0, 0.0])), on_device(backend, np.array([1.0, 0.0, 1.0]))
    with np.errstate(all="ignore"):
        out = host(augment.affine(images, angle=angle, scale=scale, fill=0.5))
        box = [on_device(backend, np.array(v)) for v in ([0.0, NAN], [0.0, 0.0], [H, 4.0], [W, 4.0])]
        crop = host(augment.resized_crop(images[:2, ...], *box, fill=0.25))
    np.testing.assert_array_equal(out[:2], 0.5)
    np.testing.assert_allclose(out[2], source[2], atol=1e-6)
    np.testing.assert_allclose(crop[0], source[0], atol=1e-6)
    np.testing.assert_array_equal(crop[1], 0.25)


def test_integer_images_are_refused(backend):
    with pytest.raises(TypeError, match="real floating dtype"):
        augment.random_affine(backend.asarray(np.zeros((2, H, W)), dtype=backend.xp.uint8), degrees=5)


def test_a_per_image_array_needs_one_value_per_image(backend):
    images = on_device(backend, np.zeros((3, H, W)))
    with pytest.raises(ValueError, match=r"angle must have shape \(3,\), one value per image; got \(2,\)"):
        augment.affine(images, angle=on_device(backend, np.zeros(2)))


def test_angles_are_degrees(backend):
    source = random_images(1, H, W)
    images = on_device(backend, source)
    full_turn = host(augment.affine(images, angle=360.0))
    np.testing.assert_allclose(full_turn, source, atol=1e-4)
    assert math.isclose(float(np.abs(host(augment.affine(images, angle=180.0)) - source[:, ::-1, ::-1]).max()), 0.0,
                        abs_tol=1e-4)


@pytest.mark.parametrize("name", sorted(RANDOM))
@pytest.mark.parametrize("generator, got", [(0.5, "float"), (42, "int"), ("rng", "str")], ids=["float", "int", "str"])
def test_a_generator_that_is_not_one_is_refused_naming_the_keyword(backend, name, generator, got):
    # torchvision's random_horizontal_flip(img, p): here the second argument is the generator
    images = on_device(backend, random_images(2, H, W))
    hint = r" \(the second argument is the generator: give the other settings by name" if got != "str" else ""
    with pytest.raises(TypeError, match=rf"^{name}: generator must be a device generator such as gd.device_rng\(\) "
                                        rf"\(or None for it\); got {got}{hint}"):
        getattr(augment, name)(images, generator)
