"""A profile with overrides is a variant with its own name and folders (clorg.core.variants): the same
overrides always give the same name, a no-op override none, the name loads the variant again, and every
"run this" command repeats the overrides."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from clorg.book import chapters, report
from clorg.core import variants
from clorg.core.config import ConfigError, load_profile, parse_overrides
from clorg.core.paths import ROOT


def test_a_plain_profile_keeps_its_name():
    cfg = load_profile("smoke")
    p = cfg["profile"]
    assert (p["name"], p["variant"], p["base"], p["overrides"]) == ("smoke", "smoke", "smoke", {})
    # an override that sets the profile's own value changes nothing: still the plain profile
    same = load_profile("smoke", {"data.train_per_class": cfg["data"]["train_per_class"]})
    assert same["profile"]["variant"] == "smoke" and same["profile"]["overrides"] == {}


def test_a_variant_is_named_by_its_overrides_readably_and_stably():
    a = load_profile("smoke", {"data.train_per_class": 50})
    name = a["profile"]["variant"]
    assert a["profile"]["name"] == "smoke"  # runs stay under runs/smoke/, keyed by their settings
    assert name.startswith("smoke+train_per_class=50-") and len(name.rsplit("-", 1)[1]) == 8
    assert a["profile"]["overrides"] == {"data.train_per_class": 50} and a["data"]["train_per_class"] == 50
    assert load_profile("smoke", {"data.train_per_class": 50})["profile"]["variant"] == name  # same overrides, same name
    b = load_profile("smoke", {"data.train_per_class": 50, "toy.points_per_class": 40})
    c = load_profile("smoke", {"toy.points_per_class": 40, "data.train_per_class": 50})
    assert b["profile"]["variant"] == c["profile"]["variant"] != name  # order does not matter; content does
    assert b["profile"]["variant"].startswith("smoke+train_per_class=50_points_per_class=40-")


def test_unreadable_characters_stay_out_of_the_name():
    cfg = load_profile("smoke", {"data.dataset": "imagefolder:/tmp/my images/x"})
    assert cfg["profile"]["variant"].startswith("smoke+dataset=imagefolder_tmp_my_images_x-")
    assert "/" not in cfg["profile"]["variant"] and " " not in cfg["profile"]["variant"]


def test_commands_repeat_the_overrides_and_load_the_same_variant():
    cfg = load_profile("smoke", {"data.dataset": "imagefolder:/tmp/my images/x", "data.train_per_class": 7})
    args = variants.profile_args(cfg)
    assert args == ("--profile smoke --override 'data.dataset=\"imagefolder:/tmp/my images/x\"' "
                    "--override data.train_per_class=7")
    words = shlex.split(args)
    again = load_profile(words[1], parse_overrides(words[3::2]))
    assert again["profile"]["variant"] == cfg["profile"]["variant"]
    assert chapters.command("geometry", cfg) == f"python -m clorg.book {args} --only 04_metrics"


def test_a_variant_name_loads_the_variant_from_its_record(results_root):
    cfg = load_profile("smoke", {"data.train_per_class": 50})
    name = cfg["profile"]["variant"]
    with pytest.raises(ConfigError, match=r"names a variant of 'smoke', but no overrides.json records its overrides"):
        load_profile(name)
    variants.write_record(cfg)
    record = json.loads((results_root / name / "overrides.json").read_text())
    assert record == {"name": name, "profile": "smoke", "overrides": {"data.train_per_class": 50}}
    again = load_profile(name)
    assert again["profile"]["variant"] == name and again["data"]["train_per_class"] == 50
    assert again["profile"]["base"] == "smoke"  # the commands name the profile, not the variant
    variants.write_record(load_profile("smoke"))  # a plain profile records nothing
    assert not (results_root / "smoke" / "overrides.json").exists()


def test_setup_names_the_variant_and_records_it(results_root, capsys):
    cfg, _ = chapters.setup("smoke", {"toy.points_per_class": 40})
    out = capsys.readouterr().out
    name = cfg["profile"]["variant"]
    assert f"profile smoke with overrides toy.points_per_class = 40: a variant named {name}" in out
    assert "(the plain profile's stay as they are; a run whose settings the overrides do not change is shared)" in out
    assert (results_root / name / "overrides.json").is_file()


def test_missing_results_of_a_variant_name_its_command(results_root):
    cfg = load_profile("smoke", {"toy.points_per_class": 40})
    from factories import FakeData

    gaps = report.missing(report.collect(cfg, FakeData()), cfg)
    toy = gaps[gaps["result"].str.endswith("/toy")].iloc[0]
    assert toy["command"] == "python -m clorg.book --profile smoke --override toy.points_per_class=40 --only 01_toy_clusters"
    assert cfg["profile"]["variant"] in toy["result"]


def test_clean_variants_lists_and_removes_only_variants(results_root, tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "ci"))
    import clean_variants

    monkeypatch.setattr(clean_variants, "ROOT", tmp_path)  # its build/ folder
    plain = results_root / "smoke"
    plain.mkdir(parents=True)
    (plain / "toy.json").write_text("{}")
    variant = results_root / "smoke+points_per_class=40-0123abcd"
    variant.mkdir()
    (variant / "toy.json").write_text("{}")
    build = tmp_path / "build" / "smoke+points_per_class=40-0123abcd"
    build.mkdir(parents=True)
    assert clean_variants.main(["--dry-run"]) == 0 and variant.is_dir()
    assert clean_variants.main([]) == 0
    assert not variant.exists() and not build.exists() and (plain / "toy.json").is_file()


def test_clean_variants_command_says_what_it_removes(results_root):
    (results_root / "quick+seeds=2-00000000").mkdir(parents=True)
    done = subprocess.run([sys.executable, "ci/clean_variants.py", "--dry-run"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert "would remove" in done.stdout and "quick+seeds=2-00000000" in done.stdout


def _clean_variants(monkeypatch, tmp_path):
    """ci/clean_variants.py as a module, its build/ folder the test's (never the project's)."""
    monkeypatch.syspath_prepend(str(ROOT / "ci"))
    import clean_variants
    monkeypatch.setattr(clean_variants, "ROOT", tmp_path)
    return clean_variants


def _variant_with_runs_on(dataset: str, results_root, tmp_path, monkeypatch, sha256: str | None = None,
                          overrides: dict | None = None):
    """A smoke variant (of ``overrides``; three contrastive epochs by default) whose stored result names
    ``dataset``, its runs trained there, and an environment whose first dataset is another one (a Fashion-MNIST
    copy): (variant folder, its own runs, runs shared with the plain profile)."""
    from factories import write_idx_set
    from clorg.core.config import all_runs
    from clorg.data import choose_profile_dataset
    from clorg.train import locate

    write_idx_set(tmp_path / "data" / "fashion-mnist", n_train=50, n_test=20)
    monkeypatch.setenv("CLORG_DATA", str(tmp_path / "data"))
    cfg = load_profile("smoke", overrides or {"train.contrastive_epochs": 3})
    variants.write_record(cfg)
    folder = results_root / cfg["profile"]["variant"]
    on_digits = lambda c: {**c, "data": {**c["data"], "dataset": ["digits"]}}
    digits = choose_profile_dataset(on_digits(cfg))
    (folder / "training.json").write_text(json.dumps(
        {"meta": {"fingerprint": {"data": {"name": dataset, "sha256": sha256 or digits.summary()["sha256"]}}},
         "result": {}}))
    mine = {locate(cfg, s, digits)[1] for s in all_runs(cfg)}
    plain = load_profile("smoke")
    theirs = {locate(plain, s, choose_profile_dataset(on_digits(plain)))[1] for s in all_runs(plain)}
    for run in mine | theirs:
        run.mkdir(parents=True, exist_ok=True)
    return folder, mine - theirs, mine & theirs


def test_clean_variants_finds_the_runs_on_the_dataset_the_results_name(results_root, tmp_path, monkeypatch, capsys):
    """The environment's first dataset (Fashion-MNIST here) is not the one the variant trained on (digits):
    its runs are still found and removed, and the run it shares with the plain profile is kept."""
    folder, own, shared = _variant_with_runs_on("digits", results_root, tmp_path, monkeypatch)
    assert own and shared
    assert _clean_variants(monkeypatch, tmp_path).main([]) == 0
    out = capsys.readouterr().out
    assert f"variant {folder.name}: its runs looked for on digits (the dataset its results name)" in out
    assert not folder.exists() and not any(p.exists() for p in own) and all(p.is_dir() for p in shared)


def test_clean_variants_removes_a_run_two_variants_share_once(results_root, tmp_path, monkeypatch, capsys):
    """Two variants whose overrides differ only in an analysis key train the same runs: each run is listed and
    removed once (the clean stopped on a FileNotFoundError at the second removal, after it had removed every
    results folder, the only way back to the runs it had not reached)."""
    one, own, _ = _variant_with_runs_on("digits", results_root, tmp_path, monkeypatch)
    two, own_too, _ = _variant_with_runs_on("digits", results_root, tmp_path, monkeypatch,
                                            overrides={"train.contrastive_epochs": 3, "toy.points_per_class": 40})
    assert one != two and own and own == own_too
    clean = _clean_variants(monkeypatch, tmp_path)
    assert clean.main(["--dry-run"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("would remove")]
    assert len(listed) == len(own) + 2 and all(sum(f"{run}" in line for line in listed) == 1 for run in own)
    assert listed[0].startswith(f"would remove {next(iter(sorted(own)))}")  # runs before the records leading to them
    assert clean.main([]) == 0
    assert not one.exists() and not two.exists() and not any(p.exists() for p in own)
    assert f"{len(own) + 2} folder(s) removed" in capsys.readouterr().out


def test_clean_variants_keeps_runs_it_cannot_locate_and_says_why(results_root, tmp_path, monkeypatch, capsys):
    folder, own, _ = _variant_with_runs_on("cifar10", results_root, tmp_path, monkeypatch)
    assert _clean_variants(monkeypatch, tmp_path).main([]) == 0
    out = capsys.readouterr().out
    assert "its runs cannot be located (DatasetNotFoundError: none of the datasets cifar10 could be loaded" in out
    # the digits runs are not the cifar10 runs it trained: nothing guessed, and its record kept to find them later
    assert all(p.is_dir() for p in own) and (folder / "overrides.json").is_file()


def test_clean_variants_refuses_another_copy_of_the_dataset(results_root, tmp_path, monkeypatch, capsys):
    """The results name digits with another checksum (another copy): a run folder's name holds the checksum,
    so the runs are not looked for under this copy's names; the variant is kept, and the message says why."""
    folder, own, _ = _variant_with_runs_on("digits", results_root, tmp_path, monkeypatch, sha256="0" * 64)
    assert _clean_variants(monkeypatch, tmp_path).main([]) == 0
    out = capsys.readouterr().out
    assert "its results were computed on a copy of digits with sha256 000000000000..." in out
    assert folder.is_dir() and all(p.is_dir() for p in own)


def test_a_profile_file_is_kept_by_its_absolute_path_and_shown_from_where_it_is_used(tmp_path, monkeypatch):
    """A profile file given relative to the working folder is kept absolute (a kernel in notebooks/ and a command
    in the root read it alike); a command shows it from the project root, a notebook's parameters from
    notebooks/, and a file outside the project in full."""
    from clorg.core.paths import ROOT

    monkeypatch.chdir(ROOT / "configs")
    shipped = load_profile("smoke.yaml")
    assert shipped["profile"]["base"] == str(ROOT / "configs" / "smoke.yaml")
    assert variants.profile_args(shipped) == "--profile configs/smoke.yaml"
    assert variants.notebook_parameters(shipped) == "profile = '../configs/smoke.yaml', overrides = {}"
    (tmp_path / "mine.yaml").write_text((ROOT / "configs" / "smoke.yaml").read_text().replace("name: smoke", "name: mine", 1))
    monkeypatch.chdir(tmp_path)
    mine = load_profile("mine.yaml", {"data.train_per_class": 50})
    assert variants.profile_args(mine) == f"--profile {tmp_path / 'mine.yaml'} --override data.train_per_class=50"
    assert variants.notebook_parameters(mine) == (f"profile = {str(tmp_path / 'mine.yaml')!r}, "
                                                  f"overrides = {{'data.train_per_class': 50}}")
    assert load_profile("smoke")["profile"]["base"] == variants.shown_profile(load_profile("smoke")) == "smoke"
