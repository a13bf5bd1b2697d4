"""Stage 5, the book: what each chapter computes and stores (``chapters``, ``store``), the claims and the
report, the figures, and the pages generated from the profiles (fidelity, findings)."""
