"""The bench reports of a 2-model × 2-target × 2-precision matrix (synthetic cell records, no compile):
the Markdown's columns and notes, and the HTML as Chromium renders it (DOM assertions, and a screenshot)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edgest.report.bench_writers import render_bench_markdown, write_bench_reports
from synthetic_bench import FIGURES, bench_document  # tests/report/, on sys.path under pytest's rootdir import mode

SCHEMA = json.loads((Path(__import__("edgest").__file__).parent / "report" / "schema" / "bench.schema.json").read_text())
SCREENSHOT = Path("/tmp/bench_html.png")


class _Dom(HTMLParser):
    """Elements as (tag, attributes, text inside), with the enclosing ``g.pt`` of every shape inside a point."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": [e["attrs"] for e in self._open]}
        self.elements.append(el)
        if tag not in ("circle", "rect", "polygon", "path", "line", "stop", "meta"):
            self._open.append(el)

    def handle_endtag(self, tag: str) -> None:
        tags = [e["tag"] for e in self._open]
        if tag in tags:  # </circle> and the like close nothing that was kept open
            del self._open[len(tags) - 1 - tags[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        for el in self._open:
            el["text"] += data

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.elements if e["tag"] == tag and (cls is None or cls in (e["attrs"].get("class") or "").split())]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium not installed (apt-get install chromium); .ci/run installs it")
    return found


def test_markdown_puts_device_figures_beside_the_host_and_explains_them():
    md = render_bench_markdown(bench_document())
    lines = md.splitlines()
    head = [h.strip() for h in lines[4].strip("|").split("|")]
    assert head[6:13] == ["SQNR dB", "pixel-8 SQNR dB", "top-1 agree", "host p50 ms", "host p90 ms", "pixel-8 p50 ms",
                          "speed-up vs eager"]
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:3]): line for line in lines if line.startswith("| ")}
    assert "| 141.4 | 139.0 | 100% | 0.57 | 0.68 | 4.20 | 13.86× |" in rows[("squeezetime_tiny", "onnx", "fp32")]
    # each model's eager reference first, marked; every measured cell has a speed-up
    models = [line.split("|")[1].strip() for line in lines[6:16]]
    assert models == ["squeezetime_tiny"] * 5 + ["emov2_tiny_video"] * 5 and "· reference |" in lines[6] and "· reference |" in lines[11]
    for (m, t, p), (_, p50, _, _) in FIGURES.items():
        assert rows[(m, t, p)].rstrip(" |").endswith("–") == (p50 is None)
    assert "Weights: squeezetime_tiny: random init; emov2_tiny_video: emov2.pt (sha256 abababab…)." in md
    assert ("p50 of at least 30 timed runs (and 2 s) after 5 warm-up run(s), 1 thread(s)" in md
            and '"passed" means measured: there is no latency limit unless a budget is given (latency budget: onnx ≤ 2 ms)' in md)
    assert "- Device pixel-8: Android 14, aarch64, onnxruntime 1.20.0; 1 cell(s)" in md
    assert md.count("# edgest bench") == 1 and "[]" not in md


def test_rewriting_the_reports_is_byte_identical_and_schema_valid(tmp_path):
    doc = bench_document()
    write_bench_reports(doc, tmp_path)
    once = {n: (tmp_path / n).read_bytes() for n in ("bench.json", "report.md", "report.html")}
    write_bench_reports(json.loads(once["bench.json"]), tmp_path)  # what merge does: read back, rewrite
    assert {n: (tmp_path / n).read_bytes() for n in once} == once
    jsonschema.validate(json.loads(once["bench.json"]), SCHEMA)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[_Dom, Path]:
    chromium = _chromium()
    out = tmp_path_factory.mktemp("html")
    write_bench_reports(bench_document(), out)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={out / 'profile'}"]
    url = (out / "report.html").resolve().as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-500:]
    shot = subprocess.run([chromium, *flags, "--window-size=1400,1500", f"--screenshot={SCREENSHOT}", url],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and SCREENSHOT.stat().st_size > 50_000, shot.stderr[-500:]
    parsed = _Dom()
    parsed.feed(dom.stdout)
    return parsed, out


def _shape(point: dict[str, Any], dom: _Dom) -> dict[str, Any]:
    """The marker drawn inside ``point`` (its first shape element)."""
    return next(e for e in dom.elements if e["tag"] in ("circle", "rect", "polygon") and point["attrs"] in e["parents"])


def test_points_encode_model_target_and_precision_with_a_legend(rendered):
    dom, _ = rendered
    points = dom.find("g", "pt")
    plotted = {(m, t, p) for (m, t, p), (status, p50, sqnr, _) in FIGURES.items() if p50 is not None and sqnr is not None}
    assert {(e["attrs"]["data-model"], e["attrs"]["data-target"], e["attrs"]["data-precision"]) for e in points} == plotted
    shapes = {m: {e["attrs"]["data-shape"] for e in points if e["attrs"]["data-model"] == m} for m in ("squeezetime_tiny", "emov2_tiny_video")}
    assert all(len(s) == 1 for s in shapes.values()) and shapes["squeezetime_tiny"] != shapes["emov2_tiny_video"]
    fills = {(e["attrs"]["data-precision"], e["attrs"]["data-status"]): _shape(e, dom)["attrs"]["fill"] for e in points}
    assert all(f.startswith("url(#ht") for (p, s), f in fills.items() if p == "int8" and s != "incomplete")  # hatched
    assert all(f.startswith("#") and f != "#fff" for (p, s), f in fills.items() if p == "fp32")  # solid
    strokes = {t: {_shape(e, dom)["attrs"]["stroke"] for e in points if e["attrs"]["data-target"] == t} for t in ("onnx", "executorch", "eager")}
    assert all(len(s) == 1 for s in strokes.values()) and len(set.union(*strokes.values())) == 3  # one colour per target
    legend = {cls: [e["text"] for e in dom.find("g", cls)] for cls in ("legend-model", "legend-target", "legend-precision", "legend-status")}
    assert legend == {"legend-model": ["squeezetime_tiny", "emov2_tiny_video"], "legend-target": ["eager", "onnx", "executorch"],
                      "legend-precision": ["fp32", "int8"], "legend-status": ["incomplete (hollow)", "failed (crossed)"]}


def test_failed_and_incomplete_points_are_drawn_distinctly(rendered):
    dom, _ = rendered
    by_status = {e["attrs"]["data-status"]: e for e in dom.find("g", "pt") if e["attrs"]["data-status"] != "passed"}
    assert set(by_status) == {"failed", "incomplete"}
    hollow = _shape(by_status["incomplete"], dom)["attrs"]
    assert hollow["fill"] == "#fff" and "stroke-dasharray" in hollow
    crossed = [e for e in dom.find("path") if by_status["failed"]["attrs"] in e["parents"]]
    assert len(crossed) == 1 and crossed[0]["attrs"]["d"].count("M") == 2  # the two strokes of the X


def test_pareto_front_starts_at_the_fastest_cell_that_did_not_fail(rendered):
    dom, _ = rendered
    (front,) = dom.find("path", "pareto")
    fastest = next(e for e in dom.find("g", "pt") if (e["attrs"]["data-model"], e["attrs"]["data-target"], e["attrs"]["data-precision"])
                   == ("squeezetime_tiny", "onnx", "int8"))  # 0.41 ms; the failed int8 executorch cell (0.52 ms) is not on it
    mark = _shape(fastest, dom)["attrs"]
    assert front["attrs"]["d"].startswith(f"M{mark['cx']} {mark['cy']} H")
    assert front["attrs"]["d"].count("V") == 1  # 32.5 dB at 0.41 ms, then 120 dB (capped) at 0.57 ms: one step up


def test_cells_table_shows_reasons_inline_and_speedups(rendered):
    dom, _ = rendered
    head = [e["text"] for e in dom.find("th")]
    assert head[:5] == ["model", "target", "precision", "status", "reason"] and "pixel-8 p50 ms" in head and "pixel-8 SQNR dB" in head
    assert head.index("pixel-8 p50 ms") == head.index("host p90 ms") + 1
    by_row: dict[int, list[dict[str, Any]]] = {}
    for td in dom.find("td"):  # grouped by the row they sit in
        by_row.setdefault(id(td["parents"][-1]), []).append(td)
    cells = {tuple(td["text"] for td in tds[:3]): tds for tds in by_row.values()}
    assert len(cells) == 10
    for (m, t, p), (status, p50, _, error) in FIGURES.items():
        tds = cells[(m, t, p)]
        reason = next(td["text"] for td in tds if td["attrs"].get("class") == "reason")
        speedup = next(td["text"] for td in tds if td["attrs"].get("class") == "speedup")
        assert error in reason
        assert (speedup == "–") == (p50 is None), (m, t, p, speedup)
        if p50 is not None:
            eager = FIGURES[(m, "eager", "fp32")][1]
            assert speedup.startswith(f"{eager / p50:.2f}×")
    assert "over budget: p50 2.10 ms > 2 ms" in next(td["text"] for td in cells[("emov2_tiny_video", "onnx", "fp32")]
                                                     if td["attrs"].get("class") == "reason")
    assert [td["text"] for td in cells[("squeezetime_tiny", "onnx", "fp32")]][-2:] == ["4.20", "13.86×"]


def test_page_is_self_contained(rendered):
    _, out = rendered
    page = (out / "report.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "<script" not in page and "<link" not in page
