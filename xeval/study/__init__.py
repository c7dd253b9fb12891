"""``xeval study``: declarative study plans run cell by cell into a committed store.

- :mod:`xeval.study.plan`     the TOML plan as typed dataclasses (:func:`load_plan`);
- :mod:`xeval.study.cells`    cell ids and the balanced order (:func:`plan_cells`);
- :mod:`xeval.study.stages`   the one adapter to the library (pairs, fine-tune, run, evaluate);
- :mod:`xeval.study.store`    the results store (one atomic folder per finished cell);
- :mod:`xeval.study.consistency` one build of each input per store (benchmarks, pairs, models);
- :mod:`xeval.study.runner`   resumable execution by claiming workers (:func:`run_study`);
- :mod:`xeval.study.costs`    what a cell costs, from the stored cells like it;
- :mod:`xeval.study.status`   what is stored, left, held by a worker, and its cost
  (:func:`study_status`);
- :mod:`xeval.study.commands` one call per ``xeval study`` command (:func:`run_plan`, ...);
- :mod:`xeval.study.analysis` seed means, seed-aware unit-level tests with Holm and t intervals,
  verdicts, the dev-curve step rule;
- :mod:`xeval.study.report`   the report's sections, from the store alone;
- :mod:`xeval.study.figures`  its figures (bars, alpha curve, dev curve);
- :mod:`xeval.study.render`   its blocks as Markdown and as self-contained HTML.
"""
