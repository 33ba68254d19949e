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

from common import add_probe_flags, compare_probes, parse_args, setup

import gdnet as gd
from gdnet.data import augment


def flags(parser):
    parser.add_argument("--temperature", type=float, default=0.5, help="NT-Xent temperature")
    parser.add_argument("--width", type=int, default=16, help="channels of the first conv layer (then x2, x4)")
    parser.add_argument("--crop-scale", type=float, default=0.3, help="smallest crop, as a fraction of the area")
    parser.add_argument("--degrees", type=float, default=15.0, help="largest rotation, in degrees")
    parser.add_argument("--erase", type=float, default=0.5, help="probability of erasing a box of a view")
    parser.add_argument("--jitter", type=float, default=0.4, help="brightness and contrast jitter")
    add_probe_flags(parser)


args = parse_args(__doc__, epochs=10, batch_size=256, lr=1e-3, extra=flags)
backend, train, test = setup(args)
nn = gd.nn
rng = gd.device_rng(backend)


def view(x: gd.Tensor) -> gd.Tensor:
    """One random view of each image of the batch (N, 28, 28), made on the device."""
    images = augment.random_resized_crop(x.data, rng, scale=(args.crop_scale, 1.0))
    images = augment.random_affine(images, rng, degrees=args.degrees, translate=(0.1, 0.1), scale=(0.9, 1.1))
    images = augment.random_horizontal_flip(images, rng)
    if args.jitter:
        images = augment.color_jitter(images, rng, brightness=args.jitter, contrast=args.jitter)
    return gd.Tensor(augment.random_erasing(images, rng, p=args.erase, scale=(0.02, 0.2)))


def make_encoder(width: int) -> nn.Module:
    """(N, 28, 28) images -> (N, 4 * width) features: three conv + BatchNorm + ReLU blocks, two
    max-pools and a global average pool."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28)),
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )


encoder, untrained = make_encoder(args.width), make_encoder(args.width)
untrained.load_state_dict(encoder.state_dict())  # the same initial weights, for the baseline
size = 4 * args.width
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
    print(f"epoch {epoch:>3}/{args.epochs}  NT-Xent loss {float(total) / steps:.4f}  {seconds:.1f} s", flush=True)

print(f"contrastive training: {total_seconds:.0f} s on {backend.describe()}")
compare_probes({"contrastive encoder": encoder, "untrained encoder": untrained, "raw pixels": None}, train, test, args)
