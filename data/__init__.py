"""DFPIR's data layer: dataset layouts and pairing (``layouts``), sample transforms (``transforms``),
the training mixture (``mixture``), the test sets (``evalsets``), the degradations the loaders
synthesise online (``online``), ``--check_data`` (``check``), the stand-in dataset generator
(``sample``) and its degradations (``synthesis``), and ``python -m data.prepare`` (``prepare``,
with the download finders, ``finders``, and the placing of files, ``placement``). What each
dataset, task and setting is comes from the records of ``utils/tasks.py``; what a record names
(a synthesis, an online degradation, a finder) is registered here. Import the submodules directly;
nothing is loaded here.
"""
