"""How long one Step of the interactive page takes, headless, as replicates R and window k grow.

For each (R, k) on the seed's toy (waluigi.toml, 400-step horizon) the page's model is advanced
``--warm`` steps (so the plots hold that many points), then ``--repeats`` times it times:
- ``step``: ``PageModel.step()`` (the model's own step plus the page's records);
- ``render``: what SolaraViz redraws after a step: the population, amplitude and criteria
  figures (plus the network where the exact chain fits the page's budget) drawn to PNG, as
  ``solara.FigureMatplotlib`` does, and the window's HTML;
and, for one (R, k), ``page``: a click on the rendered page's Step button in solara's test
renderer (reacton diffing and widget updates included). Medians in milliseconds.

Usage: python benchmarks/bench_app.py [--replicates 100 1000 10000] [--lengths 3 8 64 512]
"""

import argparse
import io
import time
from pathlib import Path

import numpy as np

from ecology import app

TOY = str(Path(__file__).resolve().parent.parent / "scenarios" / "waluigi.toml")


def draw(model: app.PageModel) -> None:
    figures = [app.population_figure(model), app.amplitude_figure(model, 0), app.criteria_figure(model)]
    if model.exact is not None:
        figures.append(app.network_figure(model, 0))
    for figure in figures:
        figure.savefig(io.BytesIO(), format="png")
    app.window_html(model, 0)


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return 1000 * float(np.median(times))


def page_click_ms(replicates: int, k: int, warm: int, repeats: int) -> float:
    import ipyvuetify as v
    import solara

    @solara.component
    def InLayout():
        with solara.AppLayout() as main:
            app.page(TOY, run__replicates=replicates, context__length=k)
        return main

    _, rc = solara.render(InLayout(), handle_error=False)
    step = rc.find(v.Btn, children=["Step"]).widget
    for _ in range(warm):
        step.click()
    return median_ms(step.click, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--lengths", type=int, nargs="+", default=[3, 8, 64, 512])
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"{'R':>6} {'k':>4} {'exact':>6} {'step ms':>8} {'render ms':>10} {'total ms':>9}")
    for replicates in args.replicates:
        for k in args.lengths:
            model = app.PageModel(TOY, run__replicates=replicates, context__length=k)
            for _ in range(args.warm):
                model.step()
            step = median_ms(model.step, args.repeats)
            render = median_ms(lambda: draw(model), args.repeats)
            print(f"{replicates:>6} {k:>4} {'yes' if model.exact else 'no':>6} {step:>8.1f} {render:>10.1f} {step + render:>9.1f}",
                  flush=True)
    page = page_click_ms(1000, 8, args.warm // 10, args.repeats)
    print(f"page: one Step click, R = 1000, k = 8, solara test renderer: {page:.0f} ms (median)")


if __name__ == "__main__":
    main()
