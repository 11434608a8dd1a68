"""Enhancers: modules mapping RGB in [0, 1] to RGB in [0, 1]."""

from .base import Enhancer, check_enhancer_input
from .registry import ENHANCERS, create_enhancer, list_enhancers, register_enhancer

__all__ = ["ENHANCERS", "Enhancer", "check_enhancer_input", "create_enhancer", "list_enhancers", "register_enhancer"]
