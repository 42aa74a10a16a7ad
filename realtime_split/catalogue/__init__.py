"""A catalogue: many files separated by a resumable job (``realtime-split batch``, ``realtime_split.batch()``), a
thin front end over ``Separator.separate_file``.

| module | concept |
|---|---|
| ``job.py`` | ``batch()``: the inputs (files, folders, globs, lists), the output folders mirroring them, what a rerun
  skips, the loop that keeps the workers busy and records each outcome; ``BatchResult`` |
| ``engines.py`` | where the files are separated: ``LocalEngine`` (a process pool, the default) or ``RayEngine`` (one
  Ray actor per worker, ``cluster=``; Ray imported only there), each worker a model loaded once |
| ``manifest.py`` | the job's memory: ``OUT/batch-manifest.sqlite``, one row per input, locked against a second job |
"""
