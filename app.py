"""The interactive page, Mesa-style: ``solara run app.py``.

The scenario is ``$ECOLOGY_SCENARIO`` (a scenario file), else ``scenarios/waluigi.toml``;
``ecology app FILE`` does the same for any file. The components live in ``ecology/app.py``.
"""

from ecology.app import default_scenario
from ecology.app import page as scenario_page

page = scenario_page(default_scenario())
page  # noqa: B018  (solara serves the module's `page`)
