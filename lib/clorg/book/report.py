"""The reproduction report: the stored results of a profile collected (results/<profile>/), what they
are and where they came from, and every claim of SPEC section 7 (version 2) judged on them.

Claim verdicts: **reproduced** / **not reproduced** (the criterion holds or fails); **inconclusive** (a
precondition fails, a number the criterion needs is absent, or claim 4's interval contains 0);
**direction only** (claim D: CH ends below its maximum but not at half of it, whatever RLD does); **not comparable**
(no contrastive and supervised run of one encoder); **missing** (the result is not stored; the reason gives
the command). The claims are judged by :mod:`clorg.book.claims` on the numbers :mod:`clorg.book.evidence`
takes from the stored results, beside the authors' own numbers through the same test; each carries whether
its encoders were in the paper's regime, and a verdict out of regime is not counted for or against the
paper. How they are shown: :mod:`clorg.book.verdicts`. The paper's section-6 numbers beside ours:
:mod:`clorg.book.paper_numbers`; the build's summary.json: :mod:`clorg.book.summary`.
"""

from __future__ import annotations

import pandas as pd

from ..core import paths, variants
from . import chapters, claims, store
from . import evidence as E
from . import tables as T
from . import verdicts as V

REPORTED = ("toy", "training", "embeddings", "geometry", "tsne", "tsne_purity", "classifiers", "gcn_graphs",
            "dynamics", "near_duplicates")

VERDICTS = claims.VERDICTS + ("not comparable", "missing")


def collect(cfg: dict, data) -> dict[str, store.Status]:
    """Every stored result of the profile, ``{name: Status}``; a readable one carries ``entry``."""
    return {name: chapters.status(cfg, data, name) for name in REPORTED}


def result(collected: dict, name: str):
    """One collected result's data, or None when it is not usable."""
    st = collected.get(name)
    return st.entry["result"] if st is not None and st.usable else None


def stored(cfg: dict, data, name: str):
    """One stored result of the profile (perhaps from older code), or None when it is not usable."""
    return result({name: chapters.status(cfg, data, name)}, name)


def missing(collected: dict, cfg: dict) -> pd.DataFrame:
    """The results that are not there (or not usable), each with the notebook and the command that produce
    it (the command repeats the profile's overrides)."""
    folder = paths.shown(store.results_dir(variants.folder_name(cfg)))
    rows = [{"result": f"{folder}/{name}", "state": st.detail, "produced by": chapters.producer(name),
             "command": chapters.command(name, cfg)} for name, st in collected.items() if not st.usable]
    return pd.DataFrame(rows, columns=["result", "state", "produced by", "command"])


def provenance(collected: dict) -> pd.DataFrame:
    """When each stored result was stored, where and from which commit, and how long its computation took
    ("stored": the training result is rewritten, its runs reused, by every build that runs chapter 02, so its
    time can be later than the results computed from those runs)."""
    rows = []
    for name, st in collected.items():
        if not st.usable:
            continue
        m = st.entry["meta"]
        d = m["fingerprint"]["data"]
        # the training result only lists the runs: its time is the runs' own training time
        seconds = sum(r["train_seconds"] for r in st.entry["result"]["runs"]) if name == "training" else \
            m["compute_seconds"]
        rows.append({"result": name, "stored": m["saved_at"], "commit": m["commit"][:12], "hardware": m["hardware"],
                     "compute (s)": f"{seconds:,.1f}", "code": m["fingerprint"]["code"]["sha256"],
                     "state": "current" if st.kind == "current" else st.detail,
                     "data sha256": d["sha256"][:16] if d else "(no data)"})
    return pd.DataFrame(rows)


def runs(collected: dict) -> pd.DataFrame:
    """The training runs behind the numbers: epochs, wall time, device and hardware of each."""
    res = result(collected, "training")
    return runs_table(res) if res is not None else pd.DataFrame()


def _duration(seconds: float) -> str:
    """Seconds under a minute (a small profile's run: "0.0 min" said nothing), minutes above."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def runs_table(training: dict) -> pd.DataFrame:
    """The training chapter's stored runs as a table: schedule, epochs, time, throughput, loss (named: the
    methods' losses differ), parameters (the encoder's width shows there), hardware."""
    rows = []
    for r in training["runs"]:
        hw = r["hardware"]
        gpu = f"; GPU {hw['gpu']}" if hw.get("gpu") else ""
        rows.append({"encoder": r["encoder"], "method": r["method"], "schedule": r["schedule"],
                     "epochs": r["epochs_done"] if r["epochs_done"] == r["epochs"] else
                     f"{r['epochs_done']} of {r['epochs']} (stopped early)", "batch": r["batch_size"],
                     "parameters": f"{r['parameters']:,}", "train time": _duration(r["train_seconds"]),
                     "images/s": round(r["images_per_s"]),
                     "final loss": None if r["final_loss"] is None else
                     f"{r['final_loss']:.4f} ({T.LOSS_NAMES.get(r['method'], r['method'])})",
                     "hardware": f"{hw['cpu']} ({hw['cores']} cores){gpu}; {r['processes']} process(es) on {r['device']}"})
    return pd.DataFrame(rows)


# ============================================= section 7 =============================================

# The stored result each claim reads, and how its numbers are taken from it (clorg.book.evidence)
EVIDENCE = {"1": E.claim1, "2": E.claim2, "3": E.claim3, "4": E.claim4, "5": E.claim5, "6": E.claim6}


def regime_rows(collected: dict, cfg: dict) -> list[dict]:
    """Each trained run's regime gate (SPEC 7): CHI(1) on training features and kNN test accuracy at its
    analysed epoch, the thresholds and whether it is in the paper's regime; then each followed run under
    another schedule than the profile's (``schedule`` set), gated at its last snapshot (claim D may read it)."""
    rows = E.regime(result(collected, "geometry"), result(collected, "embeddings"))
    rows += E.variant_regimes(result(collected, "dynamics"), cfg["train"]["schedule"])
    return [{**r, **claims.regime_gate(r["kind"], r["chi1"], r["knn"])} for r in rows]


def verdicts(collected: dict, cfg: dict) -> list[dict]:
    """Every claim of SPEC section 7 judged on the stored results (:func:`clorg.book.claims.judge`), with
    the authors' numbers through the same test, the numbers that decide it, and a reason where there is
    no verdict ("missing": the result is not stored; "not comparable": no contrastive and supervised run
    of one encoder)."""
    regimes = {E.gate_key(r["encoder"], r["method"], r.get("schedule")): r["in_regime"]
               for r in regime_rows(collected, cfg)}
    authors = E.authors()
    out = []
    for cid, claim in claims.CLAIMS.items():
        res = result(collected, claim.source)
        if res is None:
            found, verdict, reason = [], "missing", f"run `{chapters.command(claim.source, cfg)}`"
        else:
            found = (E.dynamics(res, cfg["train"]["schedule"], chapters.judged_run(cfg)) if cid == "D"
                     else EVIDENCE[cid](res))
            verdict, reason = None, "the profile lacks a contrastive or the supervised run of one encoder"
        judged = claims.judge(cid, found, regimes)
        judged.update(verdict=judged["verdict"] or verdict or "not comparable",
                      authors=claims.judge_authors(cid, authors[cid]), authors_note=E.AUTHORS_NOTES[cid])
        if not judged["comparisons"]:
            judged["reason"] = reason
        judged["deciding"] = V.deciding(judged)
        out.append(judged)
    return out


def claim_lines(cfg: dict, data, ids) -> list[str]:
    """What a chapter prints for the claims ``ids`` it feeds, judged on the results stored so far."""
    return V.chapter_lines([c for c in verdicts(collect(cfg, data), cfg) if c["claim"] in ids])
