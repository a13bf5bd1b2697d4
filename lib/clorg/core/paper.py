"""The paper's own settings and the numbers to reproduce, each written once (../shared/paper/SPEC.md).

Facts quoted from Zhang, Lu and Xuan's public code and its saved outputs. The trainer reads the
authors' schedule constants from here, the fidelity page sets every profile against
:data:`SETTINGS`, and every comparison in the book reads the saved numbers from here.
"""

from __future__ import annotations

# ============================================= settings ===============================================
# The authors' learning-rate construction per kind (SPEC section 8): base rate lr_per_256 * batch / 256,
# LambdaLR warm-up min(1, 1e-3 + e (1 - 1e-3) / warmup) for `warmup_epochs`, then torch's
# CosineAnnealingWarmRestarts(T_0=restart_epochs, T_mult=2, eta_min) joined by SequentialLR, stepped per
# epoch. eta_min lies above the base rate, so the "annealing" raises it. `analysed_epoch`: the checkpoint
# their numbers come from (supervised ResNet-18: 120; ViT: 600).
SCHEDULE = {
    "contrastive": {"lr_per_256": 1e-5, "batch_size": 700, "warmup_epochs": 150, "restart_epochs": 2400,
                    "eta_min": 1e-2, "analysed_epoch": 1200},
    "supervised": {"lr_per_256": 5e-6, "batch_size": 1000, "warmup_epochs": 100, "restart_epochs": 600,
                   "eta_min": 1e-4, "analysed_epoch": 600},
}
WARMUP_START = 1e-3  # the warm-up's first factor
RESTART_MULT = 2     # T_mult of the warm restarts
SUPERVISED_RESNET18_EPOCH = 120  # the authors analysed supervised ResNet-18 at epoch 120, the ViT at 600


def supervised_analysed_epoch(encoder: str) -> int:
    """The epoch of the supervised run whose features the authors analysed: ResNet-18 120, the others 600
    (SPEC 7 "Terms", SPEC 8)."""
    return SUPERVISED_RESNET18_EPOCH if encoder == "resnet18" else SCHEDULE["supervised"]["analysed_epoch"]


def analysed_epoch(encoder: str, kind: str, last: int) -> int:
    """The epoch of a run that the book analyses (SPEC 7 "Terms"): a contrastive run's last; a supervised
    run's epoch the authors analysed (:func:`supervised_analysed_epoch`) where it trained that long, else
    its last. One rule for the features every chapter reads and for the records every claim reads."""
    if kind != "supervised":
        return last
    wanted = supervised_analysed_epoch(encoder)
    return wanted if last >= wanted else last


def scaled_lr(lr_per_256: float, batch_size: int) -> float:
    """The base learning rate of a batch: the rate per 256 images scaled linearly, as the authors' (and
    every profile's) ``lr_per_256 * batch / 256``. The one place this rule is written."""
    return lr_per_256 * batch_size / 256


def base_lr(kind: str) -> float:
    """The authors' base learning rate of a kind (2.73e-5 contrastive, 1.95e-5 supervised)."""
    s = SCHEDULE[kind]
    return scaled_lr(s["lr_per_256"], s["batch_size"])


# Every setting of theirs a profile has a key for: profile key -> (their value, what it is, where it is
# from). The fidelity page sets each profile's value beside it (clorg.book.fidelity).
SETTINGS = {
    "data.dataset": ("cifar10", "dataset", "SPEC 3"),
    "data.train_per_class": (None, "training images per class (all 5,000)", "SPEC 3"),
    "data.test_per_class": (None, "test images per class (all 1,000)", "SPEC 3"),
    "train.encoders": (["resnet18", "resnet101", "vit"], "encoders", "SPEC 3"),
    "train.width_scale": (1.0, "encoder width", "imageComponent/models.py"),
    "train.methods": (["moco_queue", "supervised"], "methods (SimCLR is our addition)", "SPEC 3"),
    "train.contrastive_epochs": (1200, "contrastive epochs analysed (their schedule is set for 2400)", "CL.ipynb"),
    "train.supervised_epochs": (600, "supervised epochs (ResNet-18 analysed at 120)", "supervised.ipynb"),
    "train.contrastive_batch_size": (700, "contrastive batch", "CL.ipynb"),
    "train.supervised_batch_size": (1000, "supervised batch", "supervised.ipynb"),
    "train.contrastive_lr": (1e-5, "contrastive AdamW rate per 256 images", "CL.ipynb"),
    "train.supervised_lr": (5e-6, "supervised AdamW rate per 256 images", "supervised.ipynb"),
    "train.contrastive_warmup_epochs": (150, "contrastive warm-up epochs", "CL.ipynb"),
    "train.supervised_warmup_epochs": (100, "supervised warm-up epochs", "supervised.ipynb"),
    "train.weight_decay": (0.01, "AdamW weight decay (torch's default)", "CL.ipynb"),
    "train.schedule": ("paper-literal", "schedule after warm-up: warm restarts whose eta_min lies above the "
                                        "base rate", "SPEC 8"),
    "train.contrastive_restart_epochs": (2400, "T_0 of the contrastive warm restarts", "CL.ipynb"),
    "train.supervised_restart_epochs": (600, "T_0 of the supervised warm restarts", "supervised.ipynb"),
    "train.moco_momentum": (0.99, "momentum of the key encoder", "SPEC 3"),
    "train.moco_temperature": (0.2, "temperature of the queue loss", "SPEC 3"),
    "train.moco_queue_size": (128000, "keys in the queue per view", "SPEC 3"),
    "train.label_smoothing": (0.1, "supervised label smoothing", "SPEC 3"),
    "train.supervised_crop_scale": ([0.2, 1.0], "supervised crop area range", "SPEC 3"),
    "metrics.rld_temperatures": ([1.0, 0.5, 0.2, 0.1], "RLD temperatures on image features", "SPEC 2.1"),
    "metrics.chi_ks": ([1, 10, 100, 500, 1000], "CHI neighbourhood sizes", "SPEC 2.3"),
    "toy.points_per_class": (300, "points per class of the toy figure", "SPEC 5"),
    "tsne.sample_size": (25000, "points embedded by t-SNE", "SPEC 4"),
    "tsne.perplexity_ratios": ([0.001, 0.1, 0.996], "perplexities 25, 2500, 24900 of 25,000", "SPEC 4"),
    "tsne.iterations": (1000, "t-SNE steps", "imageComponent/tsne_torch.py"),
    "tsne.exaggeration_iterations": (101, "early-exaggeration steps (`if iter == 100: P /= 4` after that step)",
                                     "imageComponent/tsne_torch.py"),
    "tsne.exaggeration": (4.0, "early-exaggeration factor", "imageComponent/tsne_torch.py"),
    "tsne.learning_rate": (500.0, "t-SNE step size", "imageComponent/tsne_torch.py"),
    "heads.lr": (0.1, "heads' AdamW learning rate", "SPEC 2.4, 2.5"),
    "heads.linear_patience": (30, "linear head: steps without a better train accuracy before it stops", "SPEC 2.5"),
    "heads.gcn_patience": (50, "GCN: steps without a better hidden-train accuracy before it stops", "SPEC 2.4"),
    "heads.gcn_width": (16, "GCN label-embedding and hidden width", "SPEC 2.4"),
    # the authors' heads along the run; our honest fit of each beside them (dynamics.heads) is an addition
    "dynamics.feateval": (True, "a linear head and GCNs at T = 0.2 and 0.1 fitted at every snapshot of the "
                                "contrastive run under the authors' protocol, label smoothing 0 and masks of 5-50 %",
                          "Feateval"),
    "dynamics.set_loss": (True, "contrastive loss on the whole training set at each snapshot", "Losseval"),
    "tsne.start": ("normal", "t-SNE start: N(0, 1) as drawn, not rescaled", "imageComponent/tsne_torch.py"),
    "tsne.neighbours": ("all", "t-SNE affinities: Gaussian over all other points", "imageComponent/tsne_torch.py"),
    "tsne.sample": ("per map", "t-SNE sample: a fresh random sample for every map", "tsne.ipynb"),
    "tsne.gradient": ("exact", "t-SNE gradient: every pair, O(n^2) a step", "imageComponent/tsne_torch.py"),
    "heads.temperatures": ([0.1, 0.2], "GCN graph temperatures", "SPEC 2.4"),
    "heads.label_smoothing": (0.1, "heads' label smoothing on the contrastive ViT", "SPEC 8"),
    "heads.mask_range": ([0.05, 0.6], "GCN mask range on the contrastive ViT", "SPEC 8"),
    "heads.random_init_label_smoothing": (0.0, "heads' label smoothing on the random init", "SPEC 8"),
    "heads.random_init_mask_range": ([0.05, 0.5], "GCN mask range on the random init", "SPEC 8"),
    "heads.dense_max_nodes": (60000, "GCN graph: dense over all 60,000 train and test nodes", "imageComponent/head.py"),
    "dynamics.rld_temperatures": ([1.0, 0.5, 0.1], "RLD temperatures along training", "SPEC 5"),
    "train.checkpoint_every": (10, "epochs between the kept snapshots of a run (the dynamics chapter's points)",
                               "SPEC 5"),
    "near_duplicates.augment_draws": (100_000_000, "Monte-Carlo draws of the augmentation on the top cross-class "
                                                   "pair", "MC.ipynb"),
}

# Settings of theirs no profile key changes: what the code always does, and whether ours does the same.
FIXED = [
    ("encoders at width 1", "torchvision ResNet with a 3x3 stride-1 stem and no max-pool; the ViT of SPEC 3",
     "same (clorg.train.models; parameter counts checked against the authors' construction)"),
    ("contrastive method", "MoCo v3 with a predictor, momentum encoder and a queue per view",
     "same (clorg.train.methods.MocoQueue)"),
    ("augmentations", "NVIDIA DALI: crop, colour jitter, grayscale, blur, solarize (SPEC 3)",
     "close: batched torch ops; the remaining differences are listed in clorg.train.augment's docstring"),
    ("precision", "fp16 autocast with a GradScaler", "different: bf16 autocast (no scaler needed) on a GPU "
                                                       "and on a CPU with native bf16, else fp32"),
    ("features", "512-d encoder output, L2-normalised, fp32", "same (clorg.features)"),
    ("metrics", "dense n x n RLD, CH, CHI", "same values, computed blockwise (clorg.analysis.metrics)"),
    ("classifier protocol", "best test accuracy over training steps",
     "both in chapter 06: theirs as 'authors' protocol', ours early-stopped on a validation split; along the "
     "run (chapter 07) theirs where `dynamics.feateval` is on, ours where `dynamics.heads` is"),
    ("heads along the run (Feateval)", "every 10 epochs: a linear head and GCNs at T = 0.2 and 0.1 on every "
     "training label, label smoothing 0 and masks of 5-50 % at every epoch; the best test accuracy over the steps "
     "(train accuracy scored before each step, test accuracy after it), no cap on steps",
     "the same where `dynamics.feateval` is on, at every snapshot (`train.checkpoint_every`), with the profile's "
     "`heads.temperatures` and random-init settings at every epoch (`heads.random_init_label_smoothing`, "
     "`heads.random_init_mask_range`), the test set scored before each step as chapter 06's authors' protocol "
     "does (their curve is ours shifted by one step), seed 0 where their fits drew unseeded, and the GCN's graph "
     "dense as theirs up to `heads.dense_max_nodes` nodes, top-`heads.graph_k` past it; beside it where "
     "`dynamics.heads` is on, "
     "ours: one fit of each under the honest protocol (seed 0, a `heads.validation_fraction` split early-stopping "
     "it and choosing its weights, the test set scored once on the chosen weights), the GCN at T = 0.1 only (else "
     "the profile's first `heads.temperatures`), chapter 06's settings (the random-init ones at epoch 0, "
     "`heads.label_smoothing` and `heads.mask_range` after it), capped at `heads.honest_max_steps`"),
    ("classifier heads' length", "no step limit: patience alone stops a fit",
     "same under the authors' protocol; the honest protocol caps a fit at the profile's "
     "`heads.honest_max_steps`, and chapter 06 shows every fit's steps and whether it hit the cap"),
    ("supervised ResNet-18 analysed at", "epoch 120 of 600 (t-SNE, near-duplicates, saved numbers; the ViT at 600)",
     "same wherever the run trained that long (every chapter reads the analysed epoch); a shorter run at its last"),
    ("t-SNE samples", "plain random draws", "stratified by class (equal in expectation on balanced classes), "
                                             "one per map or shared as the profile says"),
    ("near-duplicate statistic", "the single most similar cross-class pair",
     "same (claim 6 reads the top pair); its 0.99 bar is SPEC 7's pre-registered criterion, not the authors'"),
    ("data of the dynamics runs and the random-init ViT", "CIFAR-10 variants (cifar10-image2/3) that their "
     "repository does not say how to rebuild", "the profile's dataset: the authors' dynamics and random-init "
     "numbers are compared as trends, each with this caveat beside it"),
]

# Losseval.ipynb: contrastive_loss(q, k) + contrastive_loss(k, q) over the encoder outputs of two augmented
# views of every training image at once; imageComponent/analyze.py's contrastive_loss: cross-entropy of
# normalize(q) normalize(k)^T / T against the diagonal, times 2T, with T = 0.2
SET_LOSS_TEMPERATURE = 0.2

# =========================================== saved numbers ============================================

# SPEC 8: the authors' dynamics runs and random-init numbers come from CIFAR-10 variants that cannot be
# rebuilt; every place that shows one of those numbers says so
VARIANT_CAVEAT = ("the authors' number comes from an undocumented CIFAR-10 variant (cifar10-image2/3) that cannot "
                  "be rebuilt: indicative only")

# 2-D toy figure: (RLD at T = 0.05, CH) per panel, in the authors' two saved runs (no seed was fixed)
TOY_RUNS = {
    "uniform": [(-0.01, 1.72), (-0.00, 0.69)],
    "rings": [(0.75, 1.05), (0.75, 0.57)],
    "lines": [(0.74, 0.44), (0.74, 0.24)],
    "tiny_clusters": [(0.72, 13.17), (0.70, 11.21)],
    "segments": [(0.78, 9577.0), (0.67, 13745.0)],
    "blobs": [(0.79, 12179.0), (0.79, 11790.0)],
}
TOY_TEMPERATURE = 0.05

# CHI(k) on the 50,000 CIFAR-10 training features of the ViT (5,000 per class: n_c of claim 1's k_max)
CLASS_SIZE = 5_000
TRAIN_IMAGES = 50_000  # the CIFAR-10 training set every number of theirs was computed on
CHI_KS = (1, 10, 100, 500, 1000)
CHI_VIT = {
    "contrastive": (0.873, 0.847, 0.805, 0.667, 0.527),  # epoch 1200
    "supervised": (0.990, 0.989, 0.989, 0.988, 0.988),  # epoch 600
}

# Linear vs GCN head (T = 0.1) on contrastive ViT features, the authors' test-selected protocol (%)
HEADS_VIT_CONTRASTIVE = {"linear": 86.43, "gcn": 85.74}
HEADS_VIT_GCN_TEMPERATURE = 0.1
HEADS_PARAMETERS = {"linear": 5130, "gcn": 652}  # trainable parameters for 512-d features and C = 10 (SPEC 2.4, 2.5)

# Randomly initialised ViT (epoch 0): CH, RLD by temperature, linear and GCN (by temperature) accuracy in %
RANDOM_VIT = {"ch": 592.5, "rld": {1.0: 0.0137, 0.2: 0.0745, 0.1: 0.1255}, "linear": 43.0,
              "gcn": {0.2: 31.3, 0.1: 35.2}}

# Contrastive ViT training dynamics (a run on an undocumented CIFAR-10 variant): the quoted values as
# (epoch, value) points; RLD(T = 1) is only said to stay below RLD1_BOUND
DYNAMICS_CH = [(0, 552.0), (300, 525.0), (1200, 8.0)]  # 525 is the peak after epoch 0; ~8 at the end
DYNAMICS_RLD = {0.1: [(0, 0.13), (750, 0.84), (1200, 0.75)]}
DYNAMICS_RLD1_BOUND = 0.02
DYNAMICS_EPOCHS = 1200

# The most similar cross-class training pair under the contrastive ResNet-101: its cosine there and
# under the supervised ResNet-101
NEAR_DUPLICATE_RESNET101 = {"cl_cosine": 0.9983, "sl_cosine": -0.07}
