"""An autoencoder trained on Fashion-MNIST without labels: 784-256-32-256-784, sigmoid output,
binary cross-entropy against the input pixels. Prints the reconstruction error per epoch, and
the accuracy of a nearest-class-mean classifier on the 32-d codes as a check that the codes
carry the classes although no label was used in training.

    python examples/autoencoder.py --backend numpy --epochs 5
"""

import time

import numpy as np
from common import parse_args, setup

import gdnet as gd

args = parse_args(__doc__, epochs=5, batch_size=128, lr=1e-3)
backend, train, test = setup(args)
nn, F = gd.nn, gd.nn.functional
encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 32))
decoder = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 784))
model = nn.Sequential(encoder, decoder)
optimizer = gd.optim.Adam(model.parameters(), lr=args.lr)
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


for epoch in range(1, args.epochs + 1):
    start = time.perf_counter()
    model.train()
    for x, _ in loader:  # the labels are never used for training
        loss = F.binary_cross_entropy_with_logits(model(x), F.flatten(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    backend.synchronize()
    seconds = time.perf_counter() - start
    model.eval()
    print(f"epoch {epoch:>3}/{args.epochs}  test reconstruction MSE {reconstruction_error(test_loader):.5f}  "
          f"{seconds:.1f} s", flush=True)


def codes(dataset):
    """(codes, labels) as host arrays, for the classifier below."""
    parts, labels = [], []
    with gd.no_grad():
        for x, y in gd.data.DataLoader(dataset, batch_size=1000):
            parts.append(encoder(x).numpy())
            labels.append(y.numpy())
    return np.concatenate(parts), np.concatenate(labels)


train_codes, train_labels = codes(train)
test_codes, test_labels = codes(test)
means = np.stack([train_codes[train_labels == c].mean(axis=0) for c in range(10)])
distances = ((test_codes[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
accuracy = float((distances.argmin(axis=1) == test_labels).mean())
print(f"nearest-class-mean accuracy on the 32-d codes: {accuracy:.2%}")
