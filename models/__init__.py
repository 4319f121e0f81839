"""Flax NNX sequence models for Long Range Arena: one layer family per file, a shared residual block, and the
classifiers the trainer builds with build_classifier (layer families by name in LAYERS)."""
from models import hippo, lru, s4d, s5
from models.blocks import ACTIVATIONS, NORMS, MaskedNorm, ResidualBlock
from models.classifier import (LAYERS, POOLINGS, Classifier, DualClassifier, SequenceEncoder, build_classifier,
                               lengths_to_mask, pool)
from models.lru import LRU
from models.params import RecurrentParam
from models.s4d import S4D
from models.s5 import S5

__all__ = ["ACTIVATIONS", "LAYERS", "LRU", "NORMS", "POOLINGS", "Classifier", "DualClassifier", "MaskedNorm",
           "RecurrentParam", "ResidualBlock", "S4D", "S5", "SequenceEncoder", "build_classifier", "hippo",
           "lengths_to_mask", "lru", "pool", "s4d", "s5"]
