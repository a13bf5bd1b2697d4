"""The pre-registered criteria of SPEC section 7 (version 2), every threshold written once, each with the
words of the SPEC it comes from.

These numbers were fixed in the SPEC before any run judged by them existed. They are never changed after
seeing a result: a change is a new version of SPEC section 7, dated, with its reason. Nothing else in the
package holds a threshold of a verdict; :mod:`clorg.book.claims` judges with these, and
``tests/test_layout.py`` checks that no other module of the book layer carries a literal threshold.
"""

from __future__ import annotations

import math

SPEC_VERSION = 2

# ============================================ regime gate =============================================
# "An encoder is in the paper's regime when CHI(1) on its training features is at least 0.80 (CL; the
# authors' ViT: 0.873) or 0.95 (SL; authors: 0.990), and its kNN accuracy (k = 10) on the test set is at
# least 0.80"
REGIME_CHI1 = {"contrastive": 0.80, "supervised": 0.95}
REGIME_KNN = 0.80
REGIME_KNN_K = 10

# ============================================== claim 1 ==============================================
# "relative CHI drop D = 1 - CHI(k_max)/CHI(1), with k_max = 0.2 n_c ... D(CL) >= 0.20 and D(SL) <= 0.05
# and D(CL) - D(SL) >= 0.15; D(RI) shown beside"
CHI_K_MAX_SHARE = 0.2
CHI_DROP_CL_MIN = 0.20
CHI_DROP_SL_MAX = 0.05
CHI_DROP_GAP_MIN = 0.15

# ============================================== claim 2 ==============================================
# "CH(SL) >= 2 CH(CL); CH(RI) shown beside"
CH_RATIO_MIN = 2.0

# ============================================== claim 3 ==============================================
# "(a) RLD_0.1(CL) - RLD_0.1(RI) >= 0.30; (b) RLD_1(CL) <= 0.05; (c) RLD_1(SL) >= 0.05 and >= 3 RLD_1(CL)"
RLD_LOCAL_T = 0.1
RLD_GLOBAL_T = 1.0
RLD_LOCAL_GAIN_MIN = 0.30
RLD_GLOBAL_CL_MAX = 0.05
RLD_GLOBAL_SL_MIN = 0.05
RLD_GLOBAL_RATIO_MIN = 3.0

# ============================================== claim 4 ==============================================
# "95 % interval from a paired bootstrap over test images pooled with the head seeds" (issue 20: at
# least 1,000 resamples, seeded)
GAIN_INTERVAL = 0.95
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0

# ============================================== claim 5 ==============================================
# "map purity P(p) = share of a point's 10 nearest neighbours in the 2-D t-SNE map that share its class
# ... (a) P_max(SL) >= 0.9 P_min(SL) and (b) P_max(CL) <= P_min(CL) - 0.5 (P_min(CL) - chance), with the
# precondition P_min(CL) >= chance + 0.30"
MAP_PURITY_K = 10
MAP_SL_KEPT_MIN = 0.9
MAP_CL_FALL_MIN = 0.5
MAP_CL_SEPARATED_MIN = 0.30

# ============================================== claim 6 ==============================================
# "cos_CL >= 0.99 and its cos_SL <= the median cos_SL of 10,000 random cross-class pairs ... the literal
# 'cos_SL <= 0' reported beside"
NEAR_DUPLICATE_CL_MIN = 0.99
NEAR_DUPLICATE_BASELINE_PAIRS = 10_000
NEAR_DUPLICATE_SL_LITERAL_MAX = 0.0
# "the primary encoder is ResNet-101 when trained, else the first encoder"
NEAR_DUPLICATE_PRIMARY_ENCODER = "resnet101"

# ============================================== dynamics ==============================================
# "CH(last) <= 0.5 max CH (CH collapses) and RLD_0.1(last) - RLD_0.1(epoch 0) >= 0.30; 'direction only'
# when CH(last) < max CH but the collapse is smaller"
DYNAMICS_CH_KEPT_MAX = 0.5
DYNAMICS_RLD_GAIN_MIN = 0.30


# What each claim says, in words (SPEC sections 1 and 7); "D" is the training dynamics of SPEC section 5
CLAIM_STATEMENTS = {
    "1": "CHI falls with k for contrastive features and stays flat for supervised ones",
    "2": "CH, a global measure, is higher for supervised than for contrastive features",
    "3": "RLD at T = 0.1 shows contrastive features locally dense, RLD at T = 1 shows them not globally "
         "dense, while supervised features are dense at both",
    "4": "a GCN on the similarity graph classifies contrastive features better than a linear head, with "
         "far fewer parameters",
    "5": "t-SNE: supervised features stay separated at every perplexity, contrastive ones only at small ones",
    "6": "two images of different classes can be near-duplicates under contrastive features while a "
         "supervised encoder keeps them apart",
    "D": "along contrastive training CH collapses while RLD at T = 0.1 rises",
}


def claim1_k_max(class_size: int) -> int:
    """k_max of claim 1 for classes of ``class_size`` training images: 0.2 n_c (1,000 of CIFAR-10's 5,000),
    rounded, at least 1."""
    return max(1, int(math.floor(CHI_K_MAX_SHARE * class_size + 0.5)))


def chi_drop(chi1, chik):
    """Claim 1's relative drop D = 1 - CHI(k_max) / CHI(1); None when either is absent or CHI(1) is 0.
    Defined here, once, for the claim's verdict and for the dynamics' path toward the regime alike."""
    return None if chi1 is None or chik is None or chi1 == 0 else 1 - chik / chi1


# ====================================== tolerances of SPEC section 6 ======================================
# Not criteria of a claim: how near one of our numbers must lie to the authors' saved number of SPEC
# section 6 for the report's numbers table to call it reproduced (on comparable settings only).
NUMBERS_TOL_CHI = 0.05        # absolute, CHI(k)
NUMBERS_TOL_ACCURACY = 2.0    # percentage points
NUMBERS_TOL_RLD = 0.01        # absolute
NUMBERS_TOL_CH = 0.10         # relative
NUMBERS_TOY_Z = 3.0           # the authors' toy values within 3 of our seed standard deviations
