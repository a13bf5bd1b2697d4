"""clorg: reproduction of "How does Contrastive Learning Organize Images?" (Zhang, Lu, Xuan, 2024)."""

__version__ = "0.1.0"
