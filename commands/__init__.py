"""The commands of ``lazarus-cot-router``: the layer above the runtime
(``lazarus_cot_router``), training (``training``) and calibration
(``calibration``). ``cli`` dispatches to each command's module, which has
``build_parser()`` and ``main(argv)``; the commands that only need the runtime
(``route``, ``generate``, ``doctor``) live in the runtime package, ``bench`` and
``demo``, which orchestrate all three, here."""
