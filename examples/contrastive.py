"""Self-supervised training (SimCLR; Chen et al., 2020): a small CNN encoder learns from two
augmented views of each unlabelled image. A projection head maps its features to the space
where NT-Xent pulls the two views of an image together and pushes the other images of the
batch away. A linear probe (a Linear layer trained on the frozen features, with labels) then
measures what the features learned, beside the same probe on the untrained encoder (the same
initial weights) and on the raw pixels.

The views are made on the device by gd.data.augment: a random resized crop, a small random
rotation, shift and scale, a horizontal flip, a brightness and contrast change and random
erasing.

    python examples/contrastive.py --backend numpy                      # the full run
    python examples/contrastive.py --backend numpy --epochs 1 --subset 2000 --probe-epochs 2
"""

import time

from common import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    add_probe_flags,
    compare_probes,
    duration,
    integer,
    parse_args,
    real,
    setup,
    usage_error,
)

import gdnet as gd
from gdnet.data import augment


def flags(parser):
    parser.add_argument("--temperature", type=POSITIVE, default=0.2, help="NT-Xent temperature")
    parser.add_argument("--width", type=COUNT, default=16, help="channels of the first conv layer (then x2)")
    parser.add_argument("--features", type=COUNT, default=32, help="channels of the last conv layer: the features")
    parser.add_argument("--blocks", type=int, default=3, choices=[2, 3, 4], help="conv blocks of the encoder")
    parser.add_argument("--fc", type=integer(0), default=0,
                        help="features from a dense layer on the last map (0: global average pool)")
    parser.add_argument("--crop-scale", type=real(0.0, above=True, high=1.0), default=0.3,
                        help="smallest crop, as a fraction of the area")
    parser.add_argument("--degrees", type=NON_NEGATIVE, default=15.0, help="largest rotation, in degrees")
    parser.add_argument("--erase", type=PROBABILITY, default=0.5, help="probability of erasing a box of a view")
    parser.add_argument("--jitter", type=NON_NEGATIVE, default=0.4, help="brightness and contrast jitter")
    parser.add_argument("--noise", type=NON_NEGATIVE, default=0.0, help="standard deviation of added Gaussian noise")
    add_probe_flags(parser)


args = parse_args(__doc__, epochs=10, batch_size=256, lr=1e-3, extra=flags)
if args.batch_size < 2:  # NT-Xent contrasts each pair with the batch's other images: one image has none
    usage_error(f"argument --batch-size: expected at least 2 (NT-Xent needs other images as negatives); got "
                f"{args.batch_size}")
backend, train, test = setup(args)
if args.batch_size > len(train):  # drop_last: not one full batch, no step
    usage_error(f"argument --batch-size: expected at most the {len(train)} training images; got {args.batch_size}")
nn = gd.nn
rng = gd.device_rng(backend)
xp = backend.xp


def view(x: gd.Tensor) -> gd.Tensor:
    """One random view of each image of the batch (N, 28, 28), made on the device."""
    images = augment.random_resized_crop(x.data, rng, scale=(args.crop_scale, 1.0))
    images = augment.random_affine(images, rng, degrees=args.degrees, translate=(0.1, 0.1), scale=(0.9, 1.1))
    images = augment.random_horizontal_flip(images, rng)
    if args.jitter:
        images = augment.color_jitter(images, rng, brightness=args.jitter, contrast=args.jitter)
    if args.noise:
        images = xp.clip(images + rng.normal(images.shape, images.dtype, 0.0, args.noise), 0.0, 1.0)
    return gd.Tensor(augment.random_erasing(images, rng, p=args.erase, scale=(0.02, 0.2)))


def make_encoder(width: int, size: int, blocks: int) -> nn.Module:
    """(N, 28, 28) images -> (N, size) features: conv + BatchNorm + ReLU blocks of width,
    2 * width, then size channels, a max-pool between blocks (28 -> 14 -> 7 -> 3 pixels) and a
    global average pool."""
    channels = [1, width, 2 * width] + [size] * (blocks - 2)
    layers = [nn.Unflatten(1, (1, 28))]
    for block in range(blocks):
        if block:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(channels[block], channels[block + 1], 3, padding=1),
                   nn.BatchNorm2d(channels[block + 1]), nn.ReLU()]
    if args.fc:
        side = 28 // 2 ** (blocks - 1)
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(size * side * side, args.fc), nn.ReLU())
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


encoder, untrained = (make_encoder(args.width, args.features, args.blocks) for _ in range(2))
untrained.load_state_dict(encoder.state_dict())  # the same initial weights, for the baseline
size = args.fc or args.features
projection = nn.Sequential(nn.Linear(size, size), nn.ReLU(), nn.Linear(size, 64))
optimizer = gd.optim.Adam(list(encoder.parameters()) + list(projection.parameters()), lr=args.lr)
schedule = gd.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
loss_fn = nn.NTXentLoss(temperature=args.temperature)
loader = gd.data.DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True, seed=args.seed)

total_seconds = 0.0
for epoch in range(1, args.epochs + 1):
    start = time.perf_counter()
    encoder.train()
    total, steps = None, 0
    for x, _ in loader:  # the labels are never used here
        # both views in one batch: one pass, and BatchNorm sees both
        first, second = gd.chunk(projection(encoder(gd.concat([view(x), view(x)]))), 2)
        loss = loss_fn(first, second)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total = loss.data if total is None else total + loss.data
        steps += 1
    schedule.step()
    backend.synchronize()
    seconds = time.perf_counter() - start
    total_seconds += seconds
    print(f"epoch {epoch:>3}/{args.epochs}  NT-Xent loss {float(total) / steps:.4f}  {duration(seconds)}", flush=True)

print(f"contrastive training: {duration(total_seconds)} on {backend.describe()}")
compare_probes({"contrastive encoder": encoder, "untrained encoder": untrained, "raw pixels": None}, train, test, args)
