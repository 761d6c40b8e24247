"""The page in a real Jupyter kernel: ``examples/app.ipynb`` executed by nbclient.

The notebook builds a :class:`ecology.app.PageModel`, displays ``page(model)``, steps the model
from code and redraws, then draws one figure alone. The kernel is an ipykernel started from this
test's own interpreter (a kernel spec written to a temporary directory with ``sys.executable``),
so it imports the package under test whatever kernels the machine has. Checked: no cell fails;
the page is displayed as a widget; the widget state the kernel sent to the (headless) front end
shows the window and the run description at step 10 after having shown step 0, and the plots'
images changed; the figure drawn alone is a PNG.
"""

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("solara")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "app.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def kernel_manager(tmp_path: Path):
    """A kernel manager for a kernel spec named python3 that runs ``sys.executable``."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = tmp_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tests)", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def html_fragments(states) -> list[str]:
    """The HTML that every HTML widget holds, given each widget's state (a dict of traits)."""
    return [state["unsafe_innerHTML"] for state in states if "unsafe_innerHTML" in state]


def images(client) -> dict[str, str]:
    """Per image widget (comm id): its PNG as the base64 text of its value buffer."""
    return {comm: buffers[("value",)]["data"] for comm, buffers in client.widget_buffers.items()
            if client.widget_state.get(comm, {}).get("_model_name") == "ImageModel" and ("value",) in buffers}


def test_the_example_notebook_displays_the_page_and_steps_it(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    seen_at_step_0, images_at_step_0 = [], {}

    def after_cell(cell, cell_index, **_):
        if cell_index == 1:  # the cell that displays the page: the widgets as first rendered
            seen_at_step_0.extend(html_fragments(dict(state) for state in client.widget_state.values()))
            images_at_step_0.update(images(client))

    client = nbclient.NotebookClient(notebook, km=kernel_manager(tmp_path), timeout=300, store_widget_state=True,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.on_cell_executed = after_cell
    client.execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    displayed = [o for o in code[0].outputs if o.output_type == "display_data"]
    assert len(displayed) >= 1 and any(WIDGET_VIEW in o.data for o in displayed)

    assert any('class="ecology-window" data-step="0"' in h for h in seen_at_step_0)
    assert any("<b>step 0 of 400</b>" in h for h in seen_at_step_0)
    final = html_fragments(w["state"] for w in notebook.metadata.widgets[WIDGET_STATE]["state"].values())
    window = [h for h in final if 'class="ecology-window"' in h]
    assert len(window) == 1 and 'data-step="10"' in window[0] and window[0].count('class="ecology-token"') == 4
    assert any("<b>step 10 of 400</b>" in h for h in final)
    assert any("exact chain: 15 page-states" in h for h in final)
    images_now = images(client)  # populations, amplitudes, criteria, network: the curves grew by 10 steps
    assert len(images_at_step_0) == 4 and images_now.keys() == images_at_step_0.keys()
    assert sum(images_now[c] != images_at_step_0[c] for c in images_now) >= 3

    printed = "".join(o.get("text", "") for o in code[1].outputs if o.output_type == "stream")
    assert printed.startswith("step 10: window of replicate 0 = ")
    assert any("image/png" in o.get("data", {}) for o in code[2].outputs)
