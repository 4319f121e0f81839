"""Flax NNX sequence models for Long Range Arena: one layer family per file, a shared residual block, and the
classifiers the trainer builds with build_classifier (layer families by name in LAYERS)."""
from models import attention, hippo, lru, rnn, rotation, s4d, s5, selective
from models.attention import MultiHeadAttention
from models.blocks import ACTIVATIONS, MLP, NORMS, MaskedNorm, ResidualBlock
from models.classifier import (LAYERS, POOLINGS, POSITIONS, Classifier, DualClassifier, SequenceEncoder,
                               build_classifier, lengths_to_mask, pool, sinusoidal_positions)
from models.lru import LRU
from models.params import RecurrentParam
from models.rnn import RNN
from models.rotation import RotationRNN
from models.s4d import S4D
from models.s5 import S5
from models.selective import Selective

__all__ = ["ACTIVATIONS", "LAYERS", "LRU", "MLP", "NORMS", "POOLINGS", "POSITIONS", "RNN", "RotationRNN", "S4D",
           "S5", "Selective", "Classifier", "DualClassifier", "MaskedNorm", "MultiHeadAttention", "RecurrentParam",
           "ResidualBlock", "SequenceEncoder", "attention", "build_classifier", "hippo", "lengths_to_mask", "lru",
           "pool", "rnn", "rotation", "s4d", "s5", "selective", "sinusoidal_positions"]
