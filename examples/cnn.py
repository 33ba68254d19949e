"""A small CNN on Fashion-MNIST: two conv + BatchNorm + ReLU + max-pool blocks and a dense head.

    python examples/cnn.py --backend cupy              # the full run (15 epochs)
    python examples/cnn.py --backend numpy --epochs 1 --subset 10000
"""

from common import fit_classifier, parse_args, setup

import gdnet as gd

args = parse_args(__doc__, epochs=15, batch_size=128, lr=1e-3)
_, train, test = setup(args)
nn = gd.nn
model = nn.Sequential(
    nn.Unflatten(1, (1, 28)),  # (N, 28, 28) images -> (N, 1, 28, 28): one channel
    nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10),
)
optimizer = gd.optim.Adam(model.parameters(), lr=args.lr)
schedule = gd.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
fit_classifier(model, optimizer, train, test, args, scheduler=schedule)
