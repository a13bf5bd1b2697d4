"""Stage 0, what every later stage uses: profiles, paths, atomic writes, input checks, devices,
provenance (commit, hardware, code versions) and the paper's own settings and numbers."""
