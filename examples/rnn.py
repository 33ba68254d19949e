"""Fashion-MNIST read row by row: each image is a sequence of 28 rows of 28 pixels, and a GRU
(or LSTM, or plain RNN) classifies it from its last hidden state. Adam with a cosine schedule.

    python examples/rnn.py --backend numpy                 # the full run (15 epochs, GRU)
    python examples/rnn.py --backend numpy --epochs 1 --subset 5000 --cell lstm
"""

from common import COUNT, fit_classifier, parse_args, setup

import gdnet as gd


def flags(parser):
    parser.add_argument("--cell", choices=["gru", "lstm", "rnn"], default="gru", help="the recurrent layer")
    parser.add_argument("--hidden", type=COUNT, default=128, help="size of the hidden state")


args = parse_args(__doc__, epochs=15, batch_size=128, lr=2e-3, extra=flags)
_, train, test = setup(args)


class SequenceClassifier(gd.nn.Module):
    """(N, 28, 28) images as (N, L=28, features=28) sequences -> (N, 10) class scores."""

    def __init__(self, cell: str, hidden: int):
        super().__init__()
        recurrent = {"gru": gd.nn.GRU, "lstm": gd.nn.LSTM, "rnn": gd.nn.RNN}[cell]
        self.recurrent = recurrent(28, hidden, batch_first=True)
        self.head = gd.nn.Linear(hidden, 10)

    def forward(self, images):
        outputs, _ = self.recurrent(images)  # (N, L, hidden)
        return self.head(outputs[:, -1, :])  # the last step has read the whole image


model = SequenceClassifier(args.cell, args.hidden)
optimizer = gd.optim.Adam(model.parameters(), lr=args.lr)
schedule = gd.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
fit_classifier(model, optimizer, train, test, args, scheduler=schedule)
