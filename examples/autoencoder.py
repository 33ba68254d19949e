"""A denoising autoencoder trained on Fashion-MNIST without labels: 784-512-256-512-784, ReLU
after the 512-unit layers and a linear 256-d code. The encoder sees each image with a random
box erased (gd.data.augment.random_erasing, on the device, with probability ``--erase``) and
the decoder must give back the whole clean image: binary cross-entropy between the output's
sigmoid and the pixels. Adam with a cosine schedule.

Prints the reconstruction error per epoch, then a linear probe (a Linear layer trained on
frozen features, with labels) on the codes, beside the same probe on the untrained encoder's
codes and on the raw pixels.

    python examples/autoencoder.py --backend numpy                       # the full run
    python examples/autoencoder.py --backend numpy --epochs 1 --subset 2000 --probe-epochs 2
"""

import time

from common import COUNT, PROBABILITY, add_probe_flags, compare_probes, duration, parse_args, setup

import gdnet as gd
from gdnet.data import augment


def flags(parser):
    parser.add_argument("--code", type=COUNT, default=256, help="size of the code")
    parser.add_argument("--hidden", type=COUNT, default=512, help="size of the hidden layers")
    parser.add_argument("--erase", type=PROBABILITY, default=0.5, help="probability of erasing a box of the input")
    add_probe_flags(parser)


args = parse_args(__doc__, epochs=20, batch_size=128, lr=1e-3, extra=flags)
backend, train, test = setup(args)
nn, F = gd.nn, gd.nn.functional
rng = gd.device_rng(backend)


def make_encoder() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, args.hidden), nn.ReLU(), nn.Linear(args.hidden, args.code))


encoder, untrained = make_encoder(), make_encoder()
untrained.load_state_dict(encoder.state_dict())  # the same initial weights, for the baseline
decoder = nn.Sequential(nn.Linear(args.code, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 784))
model = nn.Sequential(encoder, decoder)
optimizer = gd.optim.Adam(model.parameters(), lr=args.lr)
schedule = gd.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
loader = gd.data.DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
test_loader = gd.data.DataLoader(test, batch_size=1000)


def reconstruction_error(batches) -> float:
    """Mean squared error per pixel over ``batches`` (one device read)."""
    total, count = None, 0
    with gd.no_grad():
        for x, _ in batches:
            error = F.mse_loss(F.sigmoid(model(x)), F.flatten(x), reduction="sum").data
            total = error if total is None else total + error
            count += x.shape[0] * 784
    return float(total) / count


total_seconds = 0.0
for epoch in range(1, args.epochs + 1):
    start = time.perf_counter()
    model.train()
    for x, _ in loader:  # the labels are never used for training
        seen = gd.Tensor(augment.random_erasing(x.data, rng, p=args.erase)) if args.erase else x
        loss = F.binary_cross_entropy_with_logits(model(seen), F.flatten(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    schedule.step()
    backend.synchronize()
    seconds = time.perf_counter() - start
    total_seconds += seconds
    model.eval()
    print(f"epoch {epoch:>3}/{args.epochs}  test reconstruction MSE {reconstruction_error(test_loader):.5f}  "
          f"{duration(seconds)}", flush=True)

print(f"autoencoder training: {duration(total_seconds)} on {backend.describe()}")
encoders = {"autoencoder's codes": encoder, "untrained encoder's codes": untrained, "raw pixels": None}
compare_probes(encoders, train, test, args)
