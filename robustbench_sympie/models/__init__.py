"""Downstream models: frozen classifiers that own their input normalisation."""

from .base import IMAGENET_MEAN, IMAGENET_STD, Classifier
from .registry import MODELS, create_model, list_models, register_model

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MODELS", "Classifier", "create_model", "list_models", "register_model"]
