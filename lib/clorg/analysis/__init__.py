"""Stage 4, analysis: pure computations on features: the metrics (RLD, CH, CHI), the classifier heads
and their protocols, t-SNE, training dynamics, near-duplicate pairs, the toy figure's generators, and the
tidy records every result is stored as."""
