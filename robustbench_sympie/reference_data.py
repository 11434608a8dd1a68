"""Published reference figures, kept as data with their sources.

**AlexNet on ImageNet-C** (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations", ICLR 2019). The Corruption Error of a model ``f`` on corruption ``c`` is

    CE_c(f) = sum_{s=1..5} E_{s,c}(f) / sum_{s=1..5} E_{s,c}(AlexNet)

(top-1 errors), mCE is the mean of CE_c over the 15 benchmark corruptions, and the relative CE subtracts each
network's clean error before normalising:

    relCE_c(f) = sum_s (E_{s,c}(f) - E_clean(f)) / sum_s (E_{s,c}(AlexNet) - E_clean(AlexNet)).

Sources of the AlexNet figures (checked against each other by ``tests/test_aggregate.py``):

* per-corruption mean errors over severities 1..5, six decimals: ``ALEXNET_ERR`` in ``imagenet.py`` of
  google-research/augmix (commit 202cf4c85256a9dbf11c0b49ac6b05ec8c5bdb06), commented "Raw AlexNet errors taken
  from https://github.com/hendrycks/robustness". The same figures rounded to three decimals are in
  ``robustness_metrics/reports/imagenet_variants.py`` of google-research/robustness_metrics (commit
  10975b835ae4f7ea969ea3bf968a5f9f9d02063a), which cites Appendix C of the ICLR 2019 paper;
* the clean AlexNet error 0.4348: ``ALEXNET_AVERAGE_ERR_CLEAN`` in that same robustness_metrics file (it matches
  torchvision's AlexNet, 56.522 % top-1, i.e. 43.478 % error);
* per-severity errors (also for the 4 extra corruptions): ``ALEXNET_INVERSE_SCORES`` in Meta's DINOv3-licensed
  ImageNet-C metric code and ``imagenetc_alexnet_error_rates_list`` in a timm-derived ``validate`` script, both
  found in a public-code index whose repository paths we could not resolve. Their per-corruption means equal the
  six-decimal figures above exactly, which is what lets us trust them; they are needed only to normalise runs
  that cover a subset of the severities.

``hendrycks/robustness/ImageNet-C/test.py`` itself prints unnormalised errors and does not hold these constants.
"""

from __future__ import annotations

import pandas as pd

#: where the AlexNet figures come from (see the module docstring)
ALEXNET_SOURCE: str = (
    "Hendrycks & Dietterich, ICLR 2019 (Appendix C); per-corruption means as ALEXNET_ERR in google-research/augmix "
    "imagenet.py @202cf4c, clean error as ALEXNET_AVERAGE_ERR_CLEAN in google-research/robustness_metrics "
    "reports/imagenet_variants.py @10975b8"
)

#: AlexNet top-1 error on clean ImageNet validation (fraction)
ALEXNET_CLEAN_ERROR: float = 0.4348

#: AlexNet top-1 error on each benchmark corruption, averaged over severities 1..5 (fraction): the CE denominators
ALEXNET_MEAN_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}

#: AlexNet top-1 error per corruption at severities 1..5 (fraction); the 4 extra corruptions are not in mCE
ALEXNET_ERRORS_BY_SEVERITY: dict[str, tuple[float, float, float, float, float]] = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.94870, 0.98720, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.58430, 0.70048, 0.82108, 0.89750, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.91870, 0.94952),
    "frost": (0.61390, 0.79734, 0.88790, 0.89942, 0.93430),
    "fog": (0.67474, 0.76050, 0.84378, 0.87260, 0.94500),
    "brightness": (0.45140, 0.48502, 0.54048, 0.62166, 0.72440),
    "contrast": (0.64548, 0.76150, 0.88874, 0.97760, 0.99270),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.54620, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
    "speckle_noise": (0.66192, 0.74440, 0.90246, 0.94548, 0.97268),
    "gaussian_blur": (0.54732, 0.70444, 0.82574, 0.89864, 0.95940),
    "spatter": (0.47196, 0.62194, 0.75052, 0.84132, 0.90182),
    "saturate": (0.59342, 0.65514, 0.51174, 0.70834, 0.82260),
}


def alexnet_errors() -> pd.DataFrame:
    """The AlexNet reference in long form: ``corruption, severity, alexnet_error`` (severities 1..5)."""
    rows = [
        (corruption, severity, error)
        for corruption, errors in ALEXNET_ERRORS_BY_SEVERITY.items()
        for severity, error in enumerate(errors, start=1)
    ]
    return pd.DataFrame(rows, columns=["corruption", "severity", "alexnet_error"])


# ------------------------------------------------------------------------------------------------
# SyMPIE paper (Barbato et al., "A Modular System for Enhanced Robustness of Multimedia Understanding Networks
# via Deep Parametric Estimation", ACM MMSys 2024, arXiv:2402.18402)
# ------------------------------------------------------------------------------------------------
#: the paper's compute figures we could verify: name -> (resolution, GFLOPs, where it is stated). Table 1's other
#: rows (the compared enhancers) could not be retrieved and are deliberately absent rather than guessed.
SYMPIE_PAPER_FLOPS: dict[str, tuple[str, float, str]] = {
    "sympie": ("1920x1080", 2.0, "arXiv:2402.18402 abstract: 'just 2GFLOPs to process a Full HD image'"),
}
