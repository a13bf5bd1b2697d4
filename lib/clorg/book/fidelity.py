"""The fidelity page: every setting of the authors (clorg.core.paper.SETTINGS, SPEC sections 3 and 8)
beside each profile's, marked **same**, **scaled** (a size knob turned down to fit a machine) or
**different**, with the reason the profile gives in ``profile.deviations``; then what the code always
does (clorg.core.paper.FIXED). Generated from the profiles and the paper module, never typed by hand.
"""

from __future__ import annotations

from ..core import paper
from ..core.config import available_profiles, load_profile, variant_runs
from .chapters import judged_run

# settings whose change only makes the experiment smaller (or shorter): "scaled" rather than "different"
SIZE_KEYS = {
    "data.train_per_class", "data.test_per_class", "train.width_scale", "train.contrastive_epochs",
    "train.supervised_epochs", "train.contrastive_batch_size", "train.supervised_batch_size",
    "train.contrastive_warmup_epochs", "train.supervised_warmup_epochs", "train.moco_queue_size",
    "train.encoders", "tsne.sample_size", "tsne.iterations", "tsne.exaggeration_iterations", "toy.points_per_class",
    "heads.dense_max_nodes", "near_duplicates.augment_draws",
}


def _get(cfg: dict, key: str):
    section, _, name = key.partition(".")
    return cfg[section][name]


def _same(key: str, ours, theirs) -> bool:
    if key == "data.dataset" and isinstance(ours, list):  # a list of preferences: the first is the setting
        ours = ours[0]
    if key in ("train.encoders", "train.methods"):  # which, not in which order
        return sorted(ours) == sorted(theirs)
    if isinstance(theirs, float) and isinstance(ours, (int, float)):
        return abs(ours - theirs) <= 1e-12 * max(1.0, abs(theirs))
    return ours == theirs


def compare(cfg: dict) -> list[dict]:
    """One row per authors' setting: the profile's value, "same" / "scaled" / "different" and why."""
    reasons = cfg["profile"]["deviations"]
    rows = []
    for key, (theirs, what, where) in paper.SETTINGS.items():
        ours = _get(cfg, key)
        if _same(key, ours, theirs):
            mark, why = "same", ""
        else:
            mark = "scaled" if key in SIZE_KEYS else "different"
            why = reasons.get(key, "(no reason given in the profile)")
        rows.append({"key": key, "what": what, "authors": theirs, "where": where, "ours": ours, "mark": mark,
                     "why": why})
    return rows


def beside(cfg: dict) -> list[str]:
    """What the profile runs or measures beside the authors' setup, which no setting above shows: each
    extra run (``train.variants``, under another schedule), each extra epoch measured
    (``metrics.extra_epochs``) and our heads along the run (``dynamics.heads``)."""
    runs = variant_runs(cfg)
    judged = judged_run(cfg)
    decides = "; claim D is judged on it, the run closer to the authors'"
    out = [f"{v.encoder} {v.method} once more under the `{v.schedule}` schedule (`train.variants`"
           + (decides if (v.encoder, v.method, v.schedule) == judged else "") + ")" for v in runs]
    out += [f"the {e['encoder']} {e['method']} run measured also at epoch {e['epoch']} (`metrics.extra_epochs`)"
            for e in cfg["metrics"]["extra_epochs"]]
    if cfg["dynamics"]["heads"]:
        out.append("our honest linear head and GCN at every snapshot of the followed runs (`dynamics.heads`)")
    return out


def _show(value) -> str:
    if value is None:
        return "all"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):  # 100,000,000 draws, not 100000000
        return f"{value:,}"
    return str(value)


def markdown(profiles: list[str] | None = None) -> str:
    """The fidelity page's tables, one per profile, as MyST markdown."""
    profiles = profiles or available_profiles()
    out = []
    for name in profiles:
        cfg = load_profile(name)
        rows = compare(cfg)
        counts = {m: sum(r["mark"] == m for r in rows) for m in ("same", "scaled", "different")}
        out += [f"## Profile `{name}`", "", f"{cfg['profile']['description']}. Of the authors' {len(rows)} settings: "
                f"{counts['same']} the same, {counts['scaled']} scaled, {counts['different']} different.", "",
                "| setting | the authors | ours | | why |", "|---|---|---|---|---|"]
        for r in rows:
            mark = {"same": "same", "scaled": "**scaled**", "different": "**different**"}[r["mark"]]
            out.append(f"| {r['what']} (`{r['key']}`) | {_show(r['authors'])} ({r['where']}) | {_show(r['ours'])} | "
                       f"{mark} | {r['why']} |")
        out.append("")
        extra = beside(cfg)
        if extra:
            out += ["Beside the authors' runs, which the table describes: " + "; ".join(extra) + ".", ""]
    out += ["## What every profile does", "", "| | the authors | ours |", "|---|---|---|"]
    out += [f"| {what} | {theirs} | {ours} |" for what, theirs, ours in paper.FIXED]
    return "\n".join(out) + "\n"
