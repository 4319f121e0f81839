"""Flax NNX sequence models for Long Range Arena: one layer family per file, a shared residual block, and the
classifiers the trainer builds with build_classifier (layer families by name in LAYERS)."""
from models import lru, rotation, selective
from models.blocks import ACTIVATIONS, NORMS, MaskedNorm, ResidualBlock
from models.classifier import (LAYERS, POOLINGS, Classifier, DualClassifier, SequenceEncoder, build_classifier,
                               lengths_to_mask, pool)
from models.lru import LRU
from models.params import RecurrentParam
from models.rotation import RotationRNN
from models.selective import Selective

__all__ = ["ACTIVATIONS", "LAYERS", "LRU", "NORMS", "POOLINGS", "Classifier", "DualClassifier", "MaskedNorm",
           "RecurrentParam", "ResidualBlock", "RotationRNN", "Selective", "SequenceEncoder", "build_classifier",
           "lengths_to_mask", "lru", "pool", "rotation", "selective"]
