"""A 784-100-10 ReLU MLP on Fashion-MNIST with SGD and momentum (about 87% test accuracy).

    python examples/mlp.py --backend numpy --epochs 10
"""

from common import fit_classifier, parse_args, setup

import gdnet as gd

args = parse_args(__doc__, epochs=10, batch_size=128, lr=0.05)
_, train, test = setup(args)
model = gd.nn.Sequential(gd.nn.Flatten(), gd.nn.Linear(784, 100, init="he"), gd.nn.ReLU(), gd.nn.Linear(100, 10))
optimizer = gd.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
fit_classifier(model, optimizer, train, test, args)
