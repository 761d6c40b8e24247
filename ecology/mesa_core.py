"""Mesa's core (``mesa.Model``, ``mesa.Agent``, ``mesa.DataCollector``) without the rest of Mesa
at import time.

``import mesa`` runs ``mesa/__init__.py``, which imports every part of Mesa: the discrete and
continuous spaces (networkx, ``scipy.spatial``), the batch runner and the experimental packages.
The model subclasses three classes of it. Measured in a fresh process (Mesa 3.5, after numpy and
pandas, which ``mesa.agent`` needs anyway; load average 1.4 on 2 cores): the whole package costs
0.30 s of CPU, the three classes as this module imports them 0.008 s (``python
benchmarks/bench_startup.py --parts mesa`` prints both).

:func:`core` therefore registers the packages ``mesa`` and ``mesa.experimental`` (:data:`LAZY`)
as module objects made from their own import specs whose ``__init__`` has not run yet, imports
``mesa.agent``, ``mesa.model`` and ``mesa.datacollection`` into them, and gives each package a
module ``__getattr__`` that runs its real ``__init__`` the first time anything else is asked of
it (``mesa.batch_run``, ``mesa.space``, ``mesa.__version__``, ``from mesa import ...``). So every
name of Mesa stays reachable as Mesa defines it and the classes are Mesa's own objects; only the
time at which the rest of Mesa is imported changes. When Mesa is already imported (an app or a
notebook imported it first), :func:`core` returns it as it is.

One more cost is Mesa's logging: ``mesa.model`` names its logger and ``Model.__init__``'s
through ``inspect.stack()`` and ``inspect.getouterframes()``, which read a line of source for
every frame of the import's call stack and search ``sys.modules`` for each frame's module
(about 70 ms of CPU measured under ``ecology run``, growing with the stack and the modules loaded;
under 5 ms with what follows).
Mesa reads only the caller's frame and function name from them, and the module of that frame
(``inspect.getmodule``), so while ``mesa.model`` is imported :func:`plain_frames` has the first
two return the same frames, files, lines and function names without the source lines
(``code_context`` None, as ``context=0`` gives), and the third the module the frame's globals
name.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
import types

LAZY = ("mesa", "mesa.experimental")  # packages whose __init__ runs on first use, not at import
NAMES = {"Agent": "mesa.agent", "Model": "mesa.model", "DataCollector": "mesa.datacollection"}  # what the model uses


def _deferred_package(name: str) -> types.ModuleType:
    """The package ``name`` registered in ``sys.modules`` with its ``__path__`` (so its submodules
    import) but without running its ``__init__``; the first missing attribute runs it."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    package = importlib.util.module_from_spec(spec)

    def __getattr__(attribute: str):
        # once: the real __init__ fills the namespace (its imports of loaded submodules are no-ops)
        package.__dict__.pop("__getattr__", None)
        spec.loader.exec_module(package)
        try:
            return package.__dict__[attribute]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

    package.__getattr__ = __getattr__
    sys.modules[name] = package
    return package


def _outer_frames(frame, context: int = 1) -> list[inspect.FrameInfo]:
    """``inspect.getouterframes(frame)`` without source lines: each frame from ``frame`` outwards
    with its code's file, its line and its function's name (``context`` is not read)."""
    frames = []
    while frame is not None:
        frames.append(inspect.FrameInfo(frame, frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name, None, None))
        frame = frame.f_back
    return frames


@contextlib.contextmanager
def plain_frames():
    """Within the block, ``inspect.stack()`` and ``inspect.getouterframes()`` as :func:`_outer_frames`,
    and ``inspect.getmodule(frame)`` of a frame as the module its globals name (the others as
    before): the module docstring says why; restored after the block, also on an error."""
    stack, outer, getmodule = inspect.stack, inspect.getouterframes, inspect.getmodule

    def module_of(thing, _filename=None):
        if inspect.isframe(thing) and thing.f_globals.get("__name__") in sys.modules:
            return sys.modules[thing.f_globals["__name__"]]
        return getmodule(thing, _filename)

    inspect.stack = lambda context=1: _outer_frames(sys._getframe(1), context)
    inspect.getouterframes, inspect.getmodule = _outer_frames, module_of
    try:
        yield
    finally:
        inspect.stack, inspect.getouterframes, inspect.getmodule = stack, outer, getmodule


def core() -> types.ModuleType:
    """The ``mesa`` package with :data:`NAMES` loaded (and, if it was not imported yet, nothing
    else until it is asked for)."""
    if "mesa" in sys.modules:
        return sys.modules["mesa"]
    mesa, experimental = (_deferred_package(name) for name in LAZY)
    mesa.experimental = experimental
    try:
        importlib.import_module("mesa.agent")
        mesa.Agent = sys.modules["mesa.agent"].Agent  # mesa.datacollection imports it from mesa
        with plain_frames():
            importlib.import_module("mesa.model")
        importlib.import_module("mesa.datacollection")
    except BaseException:
        for name in LAZY:  # leave no half-made package behind: a later ``import mesa`` starts afresh
            sys.modules.pop(name, None)
        raise
    for attribute, module in NAMES.items():
        setattr(mesa, attribute, getattr(sys.modules[module], attribute))
    return mesa


mesa = core()
