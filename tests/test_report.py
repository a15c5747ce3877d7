"""The listening report: ``python -m speechsep report``, every run's ``report.html``, and both in a real browser.

The browser tests load the pages in Debian's ``chromium`` (headless), with a
probe script injected into a copy of the page that records console errors and
failed loads, waits for every ``<audio>`` to reach ``loadedmetadata``, clicks a
sort header, and writes what it saw into ``<pre id=test-result>``, read back
with ``--dump-dom``. ``.ci/run`` installs chromium; the tests skip, saying why,
only where it is missing.
"""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechsep.__main__ import main as speechsep_main
from speechsep.report.build import applied_settings, pick_mixtures, strategy_label
from speechsep.report.page import Audio, Card, Mixture, Page, RunFacts, render

PROBE = """
(function () {
  var result = {errors: [], audio: [], sort: null};
  window.addEventListener("error", function (event) {
    var target = event.target;
    result.errors.push(target && target !== window
      ? "failed to load " + (target.getAttribute("src") || target.getAttribute("href") || target.tagName)
      : String(event.message));
  }, true);
  var original = console.error;
  console.error = function () {
    result.errors.push(Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  };
  function column(table, index) {
    return Array.prototype.map.call(table.tBodies[0].rows, function (row) { return row.cells[index].dataset.value; });
  }
  function finish() {
    var table = document.getElementById("mixture-table");
    if (table) {
      var index = SORT_COLUMN;
      var header = table.tHead.rows[0].cells[index];
      var before = column(table, 0);
      header.click();
      var ascending = {labels: column(table, 0), values: column(table, index)};
      header.click();
      var descending = {labels: column(table, 0), values: column(table, index)};
      result.sort = {header: header.textContent, before: before, ascending: ascending, descending: descending};
    }
    var pre = document.createElement("pre");
    pre.id = "test-result";
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  }
  window.addEventListener("load", function () {
    var audios = Array.prototype.slice.call(document.querySelectorAll("audio"));
    Promise.all(audios.map(function (audio) {
      return new Promise(function (resolve) {
        function done(ok) { resolve({src: audio.getAttribute("src"), ok: ok, duration: audio.duration}); }
        if (audio.readyState >= 1) { done(true); return; }
        audio.addEventListener("loadedmetadata", function () { done(true); });
        audio.addEventListener("error", function () { done(false); });
        audio.load();
      });
    })).then(function (audio) { result.audio = audio; finish(); });
  });
})();
"""


def chromium() -> str:
    """The chromium binary; skip (saying why) where none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium on this machine: .ci/run installs Debian's chromium package "
                "(apt-get install chromium); this machine could not")


def chromium_command(binary: str, profile: Path) -> list[str]:
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}"]


def probe_page(page: Path, tmp_path: Path, sort_column: int = 3) -> dict:
    """Load a copy of ``page`` (beside it, so its relative links hold) with :data:`PROBE` and return its findings."""
    probe = page.with_name(f"probe-{page.name}")
    script = PROBE.replace("SORT_COLUMN", str(sort_column))
    probe.write_text(page.read_text().replace("<head>", f"<head><script>{script}</script>", 1))
    try:
        done = subprocess.run(chromium_command(chromium(), tmp_path / "profile")
                              + ["--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
                              capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    found = re.search(r'<pre id="test-result">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not finish; chromium said: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, target: Path, tmp_path: Path) -> np.ndarray:
    """A 1280×1600 screenshot of ``page`` as an RGB array."""
    from matplotlib import image

    subprocess.run(chromium_command(chromium(), tmp_path / "profile-shot")
                   + ["--hide-scrollbars", "--window-size=1280,1600", f"--screenshot={target}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    return image.imread(str(target))[..., :3]


class Links(html.parser.HTMLParser):
    """Every ``src`` and ``href`` of a page, and its ``<audio>`` sources."""

    def __init__(self):
        super().__init__()
        self.links, self.audio = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key):
                self.links.append(attrs[key])
        if tag == "audio":
            self.audio.append(attrs.get("src"))


def links_of(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text())
    return parser


def assert_self_contained(page: Path) -> Links:
    """Every link of ``page`` is relative (or an in-page #anchor) and names a file beside the page."""
    parser = links_of(page)
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # no CDN, no network
    for link in parser.links:
        if link.startswith("#"):
            assert f"id='{link[1:]}'" in text or f'id="{link[1:]}"' in text, link
            continue
        assert not re.match(r"^[a-z]+:", link) and not link.startswith("/"), f"not relative: {link}"
        assert (page.parent / link).is_file(), f"{page}: {link} does not exist"
    return parser


# ----------------------------------------------------------------------------- pure parts


def test_pick_mixtures_takes_the_best_then_the_worst_of_each_pair_type():
    sdr = {"female-female": [1.0, 5.0, 3.0], "male-male": [0.5, -1.0], "female-male": [2.0, 9.0, 4.0, 7.0]}
    rows = [{"pair_type": kind, "sdr_improvement": value} for kind, values in sdr.items() for value in values]
    index = {(r["pair_type"], r["sdr_improvement"]): i for i, r in enumerate(rows)}
    chosen = pick_mixtures(rows, 6)
    assert chosen == [index[k] for k in (("female-female", 5.0), ("male-male", 0.5), ("female-male", 9.0),
                                         ("female-female", 1.0), ("male-male", -1.0), ("female-male", 2.0))]
    more = pick_mixtures(rows, 8)  # then the second best of each type
    assert more[:6] == chosen and more[6:] == [index[("female-female", 3.0)], index[("female-male", 7.0)]]
    assert sorted(pick_mixtures(rows, 100)) == list(range(len(rows)))  # never more than there are


def test_settings_shown_are_the_ones_the_run_used():
    from speechsep.config import ExperimentConfig

    kmeans = applied_settings(ExperimentConfig.for_experiment("deepclustering").to_json())
    assert kmeans["readout"] == "kmeans" and "embedding_dim" in kmeans
    for unused in ("count_method", "count_threshold", "meanshift_bandwidth", "mask_loss", "count_loss_weight"):
        assert unused not in kmeans  # a two-talker k-means run neither counts nor runs mean-shift
    assert all(value is not None for value in kmeans.values())
    meanshift = applied_settings(ExperimentConfig.for_experiment("meanshift").to_json())
    assert meanshift["readout"] == "meanshift" and "count_method" not in meanshift
    counting = applied_settings(ExperimentConfig.for_experiment(
        "deepclustering", talkers=(1, 2, 3), count_method="participation", count_threshold=2.4).to_json())
    assert counting["count_method"] == "participation" and counting["count_threshold"] == 2.4
    assert "meanshift_bandwidth" not in counting
    mask = applied_settings(ExperimentConfig.for_experiment("feedforward").to_json())
    assert not {"embedding_dim", "dc_loss", "soft_mask_beta", "count_method"} & set(mask)


def test_strategy_is_named_as_the_flag_not_tensorflows_class():
    record = {"strategy": "_DefaultDistributionStrategy"}
    assert strategy_label(record, {"strategy": "default"}).startswith("default")
    assert strategy_label(record, {}) == "DefaultDistribution"
    assert strategy_label({}, {}) is None


def test_page_explains_its_tables_and_opens_every_figure_full_size():
    summary = {"overall": {"mixtures": 3, "sdr_improvement": {"mean": 5.0, "std": 1.0}},
               "by_pair_type": {"female-male": {"mixtures": 1, "sdr_improvement": {"mean": 5.5}}}}
    card = Card("run", [Audio("estimate 1", "a.wav")], {"sdr_improvement": 5.5}, [("spectrograms", "mix0/run.png")])
    page = Page("t", ["intro"], {"run": summary}, "assets/comparison.png", [], [("pair_type", "pair", None)],
                [{"label": "0", "order": 0, "anchor": "mix-0", "pair_type": "FM"}],
                [Mixture("mix-0", "m", "f", [card])],
                [RunFacts("run", "/runs/run", [("strategy", "default")], {"readout": "kmeans"}, "curve.png")])
    text = render(page)
    assert "5.50 (n=1)" in text and "their number after n=" in text  # what "(n=1)" in a pair column means
    assert "FF female-female" in text and "ideal binary mask" in text
    images = re.findall(r"(<a href='([^']+)' title='open full size'>)?<img src='([^']+)'", text)
    assert len(images) == 3 and all(link == src for _, link, src in images)  # comparison, spectrograms, curve
    assert "Click a figure to open it full size" in text


def fake_run(folder: Path, test_speakers=("A", "B"), seed=0) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": seed, "num_speakers": 2}))
    (folder / "results.json").write_text(json.dumps({"test_speakers": list(test_speakers), "overall": {}}))
    return folder


@pytest.mark.parametrize("case", ["not a run", "no results", "other test speakers", "other seed"])
def test_report_refuses_bad_runs_with_one_line_naming_them(tmp_path, capsys, case):
    first = fake_run(tmp_path / "first")
    if case == "not a run":
        other, expected = tmp_path / "plain", "is not a training run folder"
        other.mkdir()
    elif case == "no results":
        other, expected = fake_run(tmp_path / "unevaluated"), "no results.json"
        (other / "results.json").unlink()
    elif case == "other test speakers":
        other, expected = fake_run(tmp_path / "other", test_speakers=("A", "C")), "test_speakers"
    else:
        other, expected = fake_run(tmp_path / "other", seed=1), "seed"
    with pytest.raises(SystemExit) as stop:
        speechsep_main(["report", str(first), str(other), "--out", str(tmp_path / "report")])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0] and str(other) in lines[0]
    assert not (tmp_path / "report" / "index.html").exists()


# ----------------------------------------------------------------------------- pages of tiny runs


@pytest.fixture(scope="module")
def report(trained_runs, tmp_path_factory) -> Path:
    """``python -m speechsep report`` of the two tiny runs on 6 toy test mixtures, 4 of them shown."""
    out = tmp_path_factory.mktemp("report")
    assert speechsep_main(["report", str(trained_runs / "deepclustering"), str(trained_runs / "feedforward"),
                           "--out", str(out), "--corpus", "toy", "--test-mixtures", "6", "--mixtures", "4",
                           "--oracles"]) == 0
    return out / "index.html"


@pytest.mark.slow  # uses trained_runs
def test_report_page_holds_every_run_mixture_and_player_beside_it(report):
    links = assert_self_contained(report)
    text = report.read_text()
    for row in ("deepclustering", "feedforward", "oracle ibm", "oracle irm", "oracle mixture"):
        assert f"<td class=text>{row}</td>" in text
    # 4 mixtures x (mixture + 2 references + 2 estimates of each of the 2 runs)
    assert len(links.audio) == 4 * 7 and len(set(links.audio)) == 4 * 7
    assert text.count("<tr><td class=text data-value=") == 6  # every test mixture in the sortable table
    assert len(re.findall(r"<a href='#mix-\d+'>", text)) == 4  # the shown ones link to their players
    for source in links.audio:
        info = soundfile.info(str(report.parent / source))
        assert info.samplerate == 8000 and info.channels == 1 and info.frames > 0
    assert "optimizer steps" in text and "config.json" in text  # each run's facts and config
    assert "_DefaultDistributionStrategy" not in text and "Strategy" not in text  # no TensorFlow class names
    assert '"meanshift"' not in text  # a k-means run that never counts shows no counting method
    assert "</a>" in text and not re.findall(r"(?<!title='open full size'>)<img ", text)  # every image links


@pytest.mark.slow  # uses trained_runs
def test_report_of_a_run_without_checkpoint_says_so_and_renders_the_rest(trained_runs, tmp_path):
    broken = tmp_path / "feedforward"
    shutil.copytree(trained_runs / "feedforward", broken)
    for name in ("best.keras", "last.keras"):
        (broken / name).unlink(missing_ok=True)
    assert speechsep_main(["report", str(trained_runs / "deepclustering"), str(broken), "--out",
                           str(tmp_path / "report"), "--mixtures", "1"]) == 0
    page = tmp_path / "report" / "index.html"
    links = assert_self_contained(page)
    text = page.read_text()
    assert "no best.keras or last.keras checkpoint" in text and "no checkpoint" in text
    assert len(links.audio) == 1 + 2 + 2  # the mixture, its references and the one loaded run's estimates
    assert "<td class=text>feedforward</td>" in text  # its row, from its own results.json
    assert "<td class=text>oracle ibm</td>" in text and "oracle irm" not in text  # the reference row by default


@pytest.mark.slow  # uses trained_runs
def test_every_training_run_writes_a_report_page_with_players(trained_runs):
    for name in ("deepclustering", "feedforward"):
        page = trained_runs / name / "report.html"
        links = assert_self_contained(page)
        assert sorted(links.audio) == ["wavs/mixture.wav", "wavs/source1_estimate.wav", "wavs/source1_reference.wav",
                                       "wavs/source2_estimate.wav", "wavs/source2_reference.wav"]
        assert "report-spectrograms.png" in links.links and "report-curve.png" in links.links
        text = page.read_text()
        mixtures = json.loads((trained_runs / name / "results.json").read_text())["overall"]["mixtures"]
        assert mixtures > 1 and text.count("<tr><td class=text data-value=") == mixtures  # a row per mixture
        assert len(re.findall(r"<a href='#mix-\d+'>", text)) == 1  # the one with players links to them
        assert "<td class=text>oracle ibm</td>" in text  # the reference row
        assert "Strategy" not in text


@pytest.mark.slow  # uses trained_runs
def test_make_pictures_writes_the_study_report(trained_runs, toy_dataset, tmp_path):
    from conftest import load_script

    load_script("Pictures/make_pictures.py").main(["--runs", str(trained_runs), "--data", str(toy_dataset), "--out",
                                                   str(tmp_path), "--no-schematics", "--report-mixtures", "1"])
    page = tmp_path / "report" / "index.html"
    links = assert_self_contained(page)
    assert len(links.audio) == 1 + 2 + 2 * 2
    text = page.read_text()
    for row in ("feedforward", "deepclustering", "oracle ibm"):  # the study's runs, then the oracles
        assert f"<td class=text>{row}</td>" in text
    assert text.index("<td class=text>feedforward</td>") < text.index("<td class=text>deepclustering</td>")


# ----------------------------------------------------------------------------- in a real browser


def check_in_browser(page: Path, tmp_path: Path) -> dict:
    found = probe_page(page, tmp_path)
    assert found["errors"] == []
    assert found["audio"] and all(audio["ok"] for audio in found["audio"]), found["audio"]
    for audio in found["audio"]:
        info = soundfile.info(str(page.parent / audio["src"]))
        assert abs(audio["duration"] - info.frames / info.samplerate) < 0.01, audio
    return found


@pytest.mark.slow  # uses trained_runs
def test_report_in_chromium_plays_sorts_and_draws(report, tmp_path):
    found = check_in_browser(report, tmp_path)
    assert len(found["audio"]) == 4 * 7
    sort = found["sort"]
    assert sort["header"].startswith("deepclustering SDRi")
    ascending = [float(v) for v in sort["ascending"]["values"]]
    descending = [float(v) for v in sort["descending"]["values"]]
    assert ascending == sorted(ascending) and descending == sorted(descending, reverse=True)
    assert sort["ascending"]["labels"] != sort["descending"]["labels"]  # the rows really moved
    assert sorted(sort["ascending"]["labels"]) == sorted(sort["before"])
    pixels = screenshot(report, tmp_path / "report.png", tmp_path)
    assert pixels.shape[:2] == (1600, 1280)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, tables and figures, not one colour


@pytest.mark.slow  # uses trained_runs
def test_run_page_in_chromium_plays_its_wavs(trained_runs, tmp_path):
    found = check_in_browser(trained_runs / "deepclustering" / "report.html", tmp_path)
    assert len(found["audio"]) == 5


def test_browser_probe_catches_a_missing_wav_and_a_script_error(tmp_path):
    soundfile.write(str(tmp_path / "ok.wav"), np.zeros(4000, np.float32), 8000)
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset=utf-8></head><body>"
                    "<audio controls src='ok.wav'></audio><audio controls src='gone.wav'></audio>"
                    "<script>undefinedFunction();</script></body></html>")
    found = probe_page(page, tmp_path)
    assert [(a["src"], a["ok"]) for a in found["audio"]] == [("ok.wav", True), ("gone.wav", False)]
    assert found["audio"][0]["duration"] == pytest.approx(0.5)
    assert any("undefinedFunction" in error for error in found["errors"])
    assert any("gone.wav" in error for error in found["errors"])
