"""How long one Step of the interactive page takes, headless, per component, as replicates R and window k grow.

For each (R, k) on the seed's toy (waluigi.toml, 400-step horizon unless ``--horizon``) the page's model is advanced
``--warm`` steps (so the plots hold that many points), then each component is timed ``--repeats``
times and the minimum is printed, in milliseconds (the minimum strips out the time the process
waited for a core on a shared machine; the load average at the start of each row is printed too):

- ``step``: ``PageModel.step()`` (the model's own step plus the page's records);
- per plot (population ``pop``, premise amplitudes ``amp``, criteria ``crit``, network ``net``
  where the exact chain fits the page's budget): ``data``, the plot's data preparation
  (``Plot.data``: reading the model's records into arrays), and ``draw``, what the page does
  with them after a step (``LivePlot.png``: moving artists updated and drawn over the kept fixed
  part, PNG encoded);
- ``window``: the window's HTML;
- ``total``: step + every data + every draw + window, the page's work per step;
- ``full``: for comparison, every plot built from scratch and drawn to PNG by ``savefig``
  (``population_figure(model)`` ...: what the page did after each step before live plots);
and, for one (R, k), a click on the rendered page's Step button in solara's test renderer
(reacton diffing and widget updates included), the minimum over repeats.

Usage: python benchmarks/bench_app.py [--replicates 100 1000 10000] [--lengths 8 64 512] [--warm 100] [--horizon 400]
"""

import argparse
import io
import os
import time
from pathlib import Path

from ecology import app

TOY = str(Path(__file__).resolve().parent.parent / "scenarios" / "waluigi.toml")
PLOTS = {"pop": app.PopulationFigure, "amp": app.AmplitudeFigure, "crit": app.CriteriaFigure, "net": app.NetworkFigure}


def minimum_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return 1000 * min(times)


def full_redraw(model: app.PageModel) -> None:
    figures = [app.population_figure(model), app.amplitude_figure(model, 0), app.criteria_figure(model)]
    if model.exact is not None:
        figures.append(app.network_figure(model, 0))
    for figure in figures:
        figure.savefig(io.BytesIO(), format="png")


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
    return minimum_ms(step.click, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 64, 512])
    parser.add_argument("--warm", type=int, default=100, help="steps taken before timing (points on each curve)")
    parser.add_argument("--horizon", type=int, default=400, help="run.steps (at least warm + 2 repeats + 1)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    columns = ["step"] + [f"{name} {part}" for name in PLOTS for part in ("data", "draw")] + ["window", "total", "full"]
    print(f"{'R':>6} {'k':>4} {'load':>5} " + " ".join(f"{c:>9}" for c in columns))
    for replicates in args.replicates:
        for k in args.lengths:
            load = os.getloadavg()[0]
            model = app.PageModel(TOY, run__replicates=replicates, context__length=k,
                                  steps=max(args.horizon, args.warm + 2 * args.repeats + 1))
            for _ in range(args.warm):
                model.step()
            times = {"step": minimum_ms(model.step, args.repeats)}
            for name, kind in PLOTS.items():
                if kind is app.NetworkFigure and model.exact is None:
                    times[f"{name} data"] = times[f"{name} draw"] = float("nan")
                    continue
                app.live_png(model, kind)  # the fixed part, rendered once per model
                live = model.live_plots[kind]
                times[f"{name} data"] = minimum_ms(lambda: live.plot.data(model), args.repeats)
                data = live.plot.data(model)
                times[f"{name} draw"] = minimum_ms(lambda: live.png(data), args.repeats)
            times["window"] = minimum_ms(lambda: app.window_html(model, 0), args.repeats)
            times["total"] = sum(v for v in times.values() if v == v)
            times["full"] = minimum_ms(lambda: full_redraw(model), args.repeats)
            print(f"{replicates:>6} {k:>4} {load:>5.1f} " + " ".join(f"{times[c]:>9.2f}" for c in columns), flush=True)
    load = os.getloadavg()[0]
    click = page_click_ms(1000, 8, args.warm // 10, args.repeats)
    print(f"page: one Step click, R = 1000, k = 8, solara test renderer: {click:.0f} ms (minimum; load {load:.1f})")


if __name__ == "__main__":
    main()
