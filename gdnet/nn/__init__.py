"""Neural-network building blocks: Module, Parameter, layers, functional, init."""

from . import functional, init, parallel
from .activations import ELU, GELU, Hardtanh, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, MaxPool2d
from .dropout import Dropout
from .embedding import Embedding
from .layers import Flatten, Identity, Linear, Sequential, Unflatten
from .losses import NTXentLoss
from .module import Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm, SyncBatchNorm
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .regularization import l1_penalty, l2_penalty

__all__ = [
    "Flatten", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "Module", "Parameter", "ReLU",
    "Sequential", "Sigmoid", "Softmax", "Tanh", "Unflatten", "functional", "init",
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d", "Dropout",
    "LayerNorm", "MaxPool2d", "l1_penalty", "l2_penalty",
    "ELU", "Embedding", "GELU", "GRU", "GRUCell", "Hardtanh", "LSTM", "LSTMCell", "NTXentLoss", "RNN", "RNNCell",
    "SiLU", "Softplus", "SyncBatchNorm", "parallel",
]
