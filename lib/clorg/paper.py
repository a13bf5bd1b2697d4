"""The numbers to reproduce: the authors' saved notebook outputs (../shared/paper/SPEC.md section 6).

Facts quoted from Zhang, Lu and Xuan's public code and its saved outputs; every comparison in the
book reads them from here, so each appears once.
"""

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

# CHI(k) on the 50,000 CIFAR-10 training features of the ViT
CHI_KS = (1, 10, 100, 500, 1000)
CHI_VIT = {
    "contrastive": (0.873, 0.847, 0.805, 0.667, 0.527),  # epoch 1200
    "supervised": (0.990, 0.989, 0.989, 0.988, 0.988),  # epoch 600
}

# Linear vs GCN head on contrastive ViT features, the authors' test-selected protocol (%)
HEADS_VIT_CONTRASTIVE = {"gcn_T0.1": 85.74, "linear": 86.43}

# Randomly initialised ViT (epoch 0)
RANDOM_VIT = {"ch": 592.5, "rld": {1.0: 0.0137, 0.2: 0.0745, 0.1: 0.1255}, "linear": 43.0,
              "gcn": {0.2: 31.3, 0.1: 35.2}}

# Contrastive ViT training dynamics (a run on an undocumented CIFAR-10 variant): the values the SPEC
# quotes, as (epoch, value) points; RLD(T = 1) is only said to stay below this bound
DYNAMICS_VIT_CONTRASTIVE = {
    "CH": [(0, 552.0), (300, 525.0), (1200, 8.0)],  # 525 is the peak after epoch 0; ~8 at the end
    "RLD T=0.1": [(0, 0.13), (750, 0.84), (1200, 0.75)],
    "RLD T=1 below": 0.02,
}

# The most similar cross-class training pair under the contrastive ResNet-101: its cosine there and
# under the supervised ResNet-101
NEAR_DUPLICATE_RESNET101 = {"cl_cosine": 0.9983, "sl_cosine": -0.07}
