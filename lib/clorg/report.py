"""The reproduction report: every claim of SPEC section 7 and every number of SPEC section 6, with
the paper's value, ours and a verdict, collected from a profile's results store (results/<profile>/).

Verdicts:

- **reproduced** / **not reproduced**: our numbers are comparable with the paper's and agree (or not)
  within the tolerance stated in the row;
- **not comparable**: the setting differs in what the number depends on (another encoder, a subset
  of the data, a much shorter training); the reason says which;
- **missing**: the result was not computed for this profile; the reason gives the command.

Comparable means the same encoder at the paper's width, on CIFAR-10's 50,000 training images. A
shorter training is still compared (the reason says so), because claims are about the kind of
training, and how far ours is from 1,200 epochs is part of the answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import chapters, classify, dynamics, geometry, paper, results

REPORTED = ("toy", "training", "embeddings", "geometry", "tsne_claims", "classifiers", "dynamics",
            "near_duplicates")
NO_DATA = ("toy",)  # results that read no dataset

# tolerances for "reproduced" on the numbers of SPEC section 6
TOL_CHI = 0.05        # absolute, CHI(k)
TOL_ACCURACY = 2.0    # percentage points
TOL_RLD = 0.01        # absolute
TOL_CH = 0.10         # relative
TOY_Z = 3.0           # the authors' toy values within 3 of our seed standard deviations


def collect(cfg: dict, data) -> dict[str, dict | None]:
    """Every stored result of the profile: ``{name: {"meta": ..., "result": ...} or None}``."""
    return {name: results.stored(cfg, None if name in NO_DATA else data, name,
                                 producer=chapters.producer(name)) for name in REPORTED}


def missing(collected: dict, profile: str) -> pd.DataFrame:
    rows = [{"result": f"results/{profile}/{name}.json", "produced by": chapters.producer(name),
             "command": chapters.command(name, profile)} for name, entry in collected.items() if entry is None]
    return pd.DataFrame(rows, columns=["result", "produced by", "command"])


def provenance(collected: dict) -> pd.DataFrame:
    """When, where and from which commit each stored result was computed, and in how long."""
    rows = []
    for name, entry in collected.items():
        if entry is None:
            continue
        m = entry["meta"]
        data = m["fingerprint"]["data"]
        rows.append({"result": name, "computed": m["saved_at"], "commit": m["commit"][:12],
                     "hardware": m["hardware"], "compute (s)": m["compute_seconds"],
                     "data sha256": data["sha256"][:16] if data else "(no data)"})
    return pd.DataFrame(rows)


def runs(collected: dict) -> pd.DataFrame:
    """The training runs behind the numbers: epochs, wall time, device and hardware of each."""
    entry = collected.get("training")
    if entry is None:
        return pd.DataFrame()
    res = entry["result"]
    table = pd.DataFrame(res["runs"])
    hw = res.get("hardware", {})
    table["hardware"] = [_describe_hw(hw.get(f"{r['encoder']} {r['method']}")) for r in res["runs"]]
    return table


def _describe_hw(hw: dict | None) -> str:
    if not hw:
        return "unknown"
    gpu = f"; GPU {hw['gpu']}" if hw.get("gpu") else ""
    return f"{hw['cpu']} ({hw['cores']} cores){gpu}; {hw.get('processes', 1)} process(es) on {hw['device']}"


# ============================================ comparability ===========================================


def _setting(cfg: dict, data, encoder: str) -> str | None:
    """Why features of ``encoder`` under this profile cannot be compared with the paper's, or None."""
    reasons = []
    if encoder not in cfg["train"]["encoders"]:
        reasons.append(f"this profile trains no {encoder}")
    else:
        if cfg["train"]["width_scale"] != 1.0:
            reasons.append(f"our {encoder} is at width x{cfg['train']['width_scale']:g}")
    summary = data.summary()
    if summary["name"] != "cifar10" or summary["train_images"] != 50_000:
        reasons.append(f"our data is {summary['name']} with {summary['train_images']:,} training images, "
                       f"not CIFAR-10's 50,000")
    return "; ".join(reasons) or None


def _epochs_note(cfg: dict, method: str) -> str:
    kind = "supervised" if method == "supervised" else "contrastive"
    ours, theirs = cfg["train"][f"{kind}_epochs"], (600 if kind == "supervised" else 1200)
    return "" if ours >= theirs else f"our {kind} run has {ours} epochs, theirs {theirs}"


def _row(section, what, theirs, ours, verdict, reason=""):
    return {"section": section, "what": what, "paper": theirs, "ours": ours, "verdict": verdict, "reason": reason}


def _missing_row(section, what, theirs, name, profile):
    return _row(section, what, theirs, "—", "missing", f"run `{chapters.command(name, profile)}`")


def _close(ours: float, theirs: float, tol: float, relative: bool = False) -> bool:
    return abs(ours - theirs) <= (tol * abs(theirs) if relative else tol)


# ============================================= section 6 =============================================


def numbers(collected: dict, cfg: dict, data) -> pd.DataFrame:
    """Every number of SPEC section 6 beside ours, with a verdict."""
    profile = cfg["profile"]["name"]
    rows = _toy_rows(collected.get("toy"), profile)
    rows += _chi_rows(collected.get("geometry"), cfg, data)
    rows += _heads_rows(collected.get("classifiers"), cfg, data)
    rows += _random_rows(collected.get("geometry"), collected.get("classifiers"), cfg, data)
    rows += _dynamics_rows(collected.get("dynamics"), cfg)
    return pd.DataFrame(rows)


def _toy_rows(entry, profile):
    if entry is None:
        return [_missing_row("toy figure", "RLD and CH per panel", "12 values", "toy", profile)]
    rows = []
    n = entry["result"]["seeds"]
    for r in entry["result"]["comparison"]:
        ours = f"{r['ours mean']:.3g} ± {r['ours sd']:.2g} ({r['ours min']:.3g} to {r['ours max']:.3g}, {n} seeds)"
        theirs = f"{r['authors run 1']:g} / {r['authors run 2']:g}"
        z = r["max |z|"]
        ok = r["consistent"] or (np.isfinite(z) and z <= TOY_Z)
        why = "inside our range over seeds" if r["consistent"] else f"farther value {z:.1f} of our sd from our mean"
        rows.append(_row("toy figure", f"{r['panel']} {r['metric']}", theirs, ours,
                         "reproduced" if ok else "not reproduced", why))
    return rows


def _feature_row(table: dict, encoder: str, method: str):
    return table.get(f"{encoder} {method}")


def _chi_rows(entry, cfg, data):
    what = "CHI(k), ViT {m}, k={k}"
    if entry is None:
        return [_missing_row("CHI", "CHI(k) of the ViT", "10 values", "geometry", cfg["profile"]["name"])]
    table, rows = entry["result"]["table"], []
    setting = _setting(cfg, data, "vit")
    cap = max(entry["result"]["chi_ks"])
    for kind, values in paper.CHI_VIT.items():
        method = "supervised" if kind == "supervised" else "moco_queue"
        row = _feature_row(table, "vit", method)
        for k, theirs in zip(paper.CHI_KS, values):
            name = what.format(m=kind, k=k)
            if row is None or setting:
                rows.append(_row("CHI", name, theirs, "—", "not comparable", setting or f"no vit {method} run"))
                continue
            ours = row[f"CHI k={min(k, cap)}"]
            note = "; ".join(filter(None, [_epochs_note(cfg, method), f"tolerance ±{TOL_CHI}"]))
            rows.append(_row("CHI", name, theirs, round(ours, 3),
                             "reproduced" if _close(ours, theirs, TOL_CHI) else "not reproduced", note))
    return rows


def _heads_rows(entry, cfg, data):
    if entry is None:
        return [_missing_row("heads", "linear vs GCN, contrastive ViT", "86.43 / 85.74 %", "classifiers",
                             cfg["profile"]["name"])]
    res = entry["result"]
    setting = _setting(cfg, data, "vit")
    cl = res.get("vit moco_queue")
    rows = []
    for key, label in (("linear", "linear"), ("gcn_T0.1", "gcn T=0.1")):
        theirs = paper.HEADS_VIT_CONTRASTIVE[key]
        what = f"{label} on contrastive ViT (authors' protocol), %"
        if cl is None or setting or label not in cl:
            rows.append(_row("heads", what, theirs, "—", "not comparable", setting or "no vit moco_queue run"))
            continue
        ours = 100 * cl[label]["authors_protocol"]
        note = "; ".join(filter(None, [_epochs_note(cfg, "moco_queue"), f"tolerance ±{TOL_ACCURACY:g} points"]))
        rows.append(_row("heads", what, theirs, round(ours, 2),
                         "reproduced" if _close(ours, theirs, TOL_ACCURACY) else "not reproduced", note))
    return rows


def _random_rows(geo, heads, cfg, data):
    setting = _setting(cfg, data, "vit")
    r = paper.RANDOM_VIT
    g = geo["result"]["table"].get("vit random init") if geo else None
    h = heads["result"].get("vit random init") if heads else None

    def acc(key):  # the authors' protocol, as they measured it, in %
        return 100 * h[key]["authors_protocol"] if h and key in h else None

    wanted = [("CH", r["ch"], "geometry", g and g["CH"], TOL_CH, True)]
    wanted += [(f"RLD T={t:g}", v, "geometry", g and g.get(f"RLD T={t:g}"), TOL_RLD, False)
               for t, v in r["rld"].items()]
    wanted += [("linear test, % (authors' protocol)", r["linear"], "classifiers", acc("linear"), TOL_ACCURACY, False)]
    wanted += [(f"GCN T={t:g} test, % (authors' protocol)", v, "classifiers", acc(f"gcn T={t:g}"), TOL_ACCURACY, False)
               for t, v in r["gcn"].items()]
    rows = []
    for what, theirs, source, ours, tol, relative in wanted:
        what = f"random-init ViT {what}"
        if (geo if source == "geometry" else heads) is None:
            rows.append(_missing_row("random init", what, theirs, source, cfg["profile"]["name"]))
        elif ours is None or setting:
            rows.append(_row("random init", what, theirs, "—", "not comparable", setting or "not computed here"))
        else:
            tol_text = f"tolerance ±{tol:.0%}" if relative else f"tolerance ±{tol:g}"
            rows.append(_row("random init", what, theirs, round(ours, 4),
                             "reproduced" if _close(ours, theirs, tol, relative) else "not reproduced", tol_text))
    return rows


def _dynamics_rows(entry, cfg):
    d = paper.DYNAMICS_VIT_CONTRASTIVE
    theirs = ("CH " + " → ".join(f"{v:g} (e{e})" for e, v in d["CH"]) + "; RLD(0.1) "
              + " → ".join(f"{v:g} (e{e})" for e, v in d["RLD T=0.1"]) + f"; RLD(1) < {d['RLD T=1 below']:g}")
    if entry is None:
        return [_missing_row("dynamics", "CH and RLD over training", theirs, "dynamics", cfg["profile"]["name"])]
    rows = []
    reason = ("levels not comparable (their ViT, 1,200 epochs, an undocumented CIFAR-10 variant); the trend "
              "is: CH ends below its epoch-0 value while RLD(0.1) ends above its own")
    for method, records in entry["result"]["runs"].items():
        table = dynamics.dynamics_table(records)
        ch, local, broad = (dynamics.trend(table, c) for c in ("CH", "RLD T=0.1", "RLD T=1"))
        ours = (f"CH {ch['first'][1]:.0f} (e{ch['first'][0]}) → peak {ch['peak'][1]:.0f} (e{ch['peak'][0]}) → "
                f"{ch['last'][1]:.0f} (e{ch['last'][0]}); RLD(0.1) {local['first'][1]:.3f} → {local['last'][1]:.3f}; "
                f"RLD(1) at most {broad['peak'][1]:.3f}")
        verdict = "reproduced" if dynamics.follows_paper(table)["holds"] else "not reproduced"
        rows.append(_row("dynamics", f"trend over training, {entry['result']['encoder']} {method}", theirs, ours,
                         verdict, reason))
    return rows


# ============================================= section 7 =============================================

CLAIMS = {
    1: "CHI(1) − CHI(1000) is large for CL (> 0.2) and small for SL (< 0.05), for every encoder",
    2: "CH(SL) > CH(CL) for every encoder",
    3: "RLD(T = 0.1) ≫ RLD(T = 1) for CL features; SL keeps a high RLD at large T too",
    4: "GCN ≥ linear on CL features for most encoders, with about 8× fewer parameters; larger gain for CL than SL",
    5: "t-SNE: SL separates ten classes at every perplexity; CL only at small perplexity",
    6: "cross-class CL pairs with cosine > 0.99 exist whose SL cosine is ≤ 0",
}
PAPER_EVIDENCE = {
    1: "ViT: CL 0.873 → 0.527 (drop 0.346); SL 0.990 → 0.988 (drop 0.002)",
    2: "stated for ResNet-18, ResNet-101 and ViT",
    3: "random ViT RLD(1) 0.0137 vs RLD(0.1) 0.1255; CL ViT RLD(0.1) 0.75 with RLD(1) < 0.02",
    4: "their saved ViT run: GCN 85.74 % vs linear 86.43 % (test-selected), 652 vs 5,130 parameters",
    5: "figure: SL ten blobs / ring of arcs; CL fragments / one mixed disc",
    6: (f"most similar cross-class pair under CL ResNet-101: CL cosine {paper.NEAR_DUPLICATE_RESNET101['cl_cosine']}, "
        f"SL cosine {paper.NEAR_DUPLICATE_RESNET101['sl_cosine']}"),
}


def _verdict(holds: list) -> str:
    known = [h for h in holds if h is not None]
    if not known:
        return "not comparable"
    return "reproduced" if all(known) else "not reproduced"


def claims(collected: dict, cfg: dict) -> pd.DataFrame:
    """Claims 1-6 of SPEC section 7: the paper's evidence, our numbers and a verdict for each."""
    profile = cfg["profile"]["name"]
    enc, methods = cfg["train"]["encoders"], cfg["train"]["methods"]
    rows = []

    def add(n, ours, verdict, reason=""):
        rows.append({"claim": n, "statement": CLAIMS[n], "paper": PAPER_EVIDENCE[n], "ours": ours,
                     "verdict": verdict, "reason": reason})

    geo = collected.get("geometry")
    if geo is None:
        for n in (1, 2, 3):
            add(n, "—", "missing", f"run `{chapters.command('geometry', profile)}`")
    else:
        table = pd.DataFrame.from_dict(geo["result"]["table"], orient="index")
        checks = geometry.check_claims(table, enc, methods)
        for n in (1, 2, 3):
            sub = checks[checks["claim"] == n] if len(checks) else checks
            if not len(sub):
                add(n, "—", "not comparable", "the profile lacks a contrastive or the supervised run")
                continue
            ours = "; ".join(f"{r['encoder']} {r['contrastive']}: {r['numbers']}" for r in sub.to_dict("records"))
            reason = f"k capped: {geo['result']['chi_note']}" if n == 1 and geo["result"].get("chi_note") else ""
            add(n, ours, _verdict(list(sub["holds"])), reason)

    heads = collected.get("classifiers")
    if heads is None:
        add(4, "—", "missing", f"run `{chapters.command('classifiers', profile)}`")
    else:
        c4 = classify.check_claim4(heads["result"], enc, methods)
        if not len(c4):
            add(4, "—", "not comparable", "the profile trains no contrastive method")
        else:
            ours = "; ".join(f"{r['encoder']} {r['contrastive']}: {r['numbers']}" for r in c4.to_dict("records"))
            # "for most encoders": more than half of the (encoder, method) pairs
            add(4, ours, "reproduced" if c4["holds"].mean() > 0.5 else "not reproduced",
                "honest protocol (validation-selected, test scored once), mean over seeds")

    ts = collected.get("tsne_claims")
    if ts is None:
        add(5, "—", "missing", f"run `{chapters.command('tsne_claims', profile)}`")
    else:
        c5 = ts["result"]["claims"]
        ours = "; ".join(f"{r['contrastive']}: {r['numbers']}" for r in c5) or "—"
        add(5, ours, _verdict([r["holds"] for r in c5]),
            f"map purity = CHI(10) of the 2-D map; {ts['result']['sample_size']:,} points")

    nd = collected.get("near_duplicates")
    if nd is None:
        add(6, "—", "missing", f"run `{chapters.command('near_duplicates', profile)}`")
    else:
        c6 = near_duplicate_claims(nd["result"])
        ours = "; ".join(f"{name}: {c['numbers']}" for name, c in c6.items()) or "—"
        add(6, ours, _verdict([c["holds"] for c in c6.values()]))
    return pd.DataFrame(rows)


def near_duplicate_claims(result: dict) -> dict[str, dict]:
    """``{run name: claim-6 summary}`` from the stored near-duplicates result."""
    runs = result.get("runs", result)
    return {name: entry["claim6"] for name, entry in runs.items() if isinstance(entry, dict) and "claim6" in entry}


VERDICT_COLOURS = {"reproduced": "#d9f2d9", "not reproduced": "#f8d7d7", "not comparable": "#eeeeee",
                   "missing": "#fff3cd"}


def styled(table: pd.DataFrame):
    """``table`` (claims or numbers) for the page: left-aligned, top-aligned, each verdict coloured."""
    def colour(v):
        return f"background-color: {VERDICT_COLOURS[v]}" if v in VERDICT_COLOURS else ""
    return (table.style.hide(axis="index").map(colour, subset=["verdict"])
            .set_properties(**{"text-align": "left", "vertical-align": "top"}))
