"""Self-supervised training: an encoder learns from two augmented views of each unlabelled
image with the NT-Xent (SimCLR) loss; then a linear probe (a Linear layer trained on the frozen
features, with labels) measures what the features learned, against the same probe on the
untrained encoder.

    python examples/contrastive.py --backend numpy --epochs 5 --subset 20000
"""

import random
import time

import numpy as np
from common import parse_args, setup

import gdnet as gd

args = parse_args(__doc__, epochs=5, batch_size=256, lr=1e-3,
                  extra=lambda p: p.add_argument("--temperature", type=float, default=0.5))
backend, train, test = setup(args)
nn, F = gd.nn, gd.nn.functional
xp = backend.xp
rng = gd.device_rng(backend)  # draws land on the device: no host copy per step
shifts = random.Random(args.seed)


def augment(x: gd.Tensor) -> gd.Tensor:
    """A random view of a batch (N, 28, 28), made on the device: a shift of up to 3 pixels,
    a horizontal flip of half the images, a brightness change and a little noise."""
    images = x.data
    n = images.shape[0]
    dx, dy = shifts.randint(-3, 3), shifts.randint(-3, 3)  # one shift per batch
    images = xp.roll(images, shift=(dy, dx), axis=(1, 2))
    flip = rng.bernoulli(0.5, (n, 1, 1), xp.bool)
    images = xp.where(flip, xp.flip(images, axis=2), images)
    brightness = rng.uniform((n, 1, 1), images.dtype, 0.6, 1.4)
    noise = rng.normal(images.shape, images.dtype, 0.0, 0.05)
    return gd.Tensor(xp.clip(images * brightness + noise, 0.0, 1.0))


encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 128), nn.ReLU())
projection = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))
untrained = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 128), nn.ReLU())
untrained.load_state_dict(encoder.state_dict())  # the same starting weights, for the baseline
params = list(encoder.parameters()) + list(projection.parameters())
optimizer = gd.optim.Adam(params, lr=args.lr)
loss_fn = nn.NTXentLoss(temperature=args.temperature)
loader = gd.data.DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True, seed=args.seed)

for epoch in range(1, args.epochs + 1):
    start = time.perf_counter()
    total, steps = None, 0
    for x, _ in loader:  # labels unused
        loss = loss_fn(projection(encoder(augment(x))), projection(encoder(augment(x))))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total = loss.data if total is None else total + loss.data
        steps += 1
    backend.synchronize()
    print(f"epoch {epoch:>3}/{args.epochs}  NT-Xent loss {float(total) / steps:.4f}  "
          f"{time.perf_counter() - start:.1f} s", flush=True)


def features(model, dataset) -> gd.data.ArrayDataset:
    """The frozen model's features of every image, as a labelled host dataset."""
    parts = []
    with gd.no_grad():
        model.eval()
        for x, _ in gd.data.DataLoader(dataset, batch_size=1000):
            parts.append(model(x).numpy())
    return gd.data.ArrayDataset(np.concatenate(parts), dataset.targets, classes=dataset.classes)


def linear_probe(model) -> float:
    """Test accuracy of a Linear layer trained on ``model``'s frozen features."""
    probe_train, probe_test = features(model, train), features(model, test)
    probe = nn.Linear(128, 10)
    probe_optimizer = gd.optim.Adam(probe.parameters(), lr=1e-2)
    loader = gd.data.DataLoader(probe_train, batch_size=256, shuffle=True, seed=args.seed)
    for _ in range(10):
        gd.train.train_epoch(probe, loader, probe_optimizer)
    return gd.train.evaluate(probe, gd.data.DataLoader(probe_test, batch_size=1000))[1]


print(f"linear probe test accuracy: {linear_probe(encoder):.2%} after contrastive training, "
      f"{linear_probe(untrained):.2%} on the untrained encoder")
