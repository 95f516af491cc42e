"""DFPIR's data layer: dataset layouts and pairing (``layouts``), sample transforms (``transforms``),
the training mixture (``train``), the test sets (``evalsets``), ``--check_data`` (``check``), the
stand-in dataset generator (``sample``) and its degradations (``synthesis``). What each dataset
and task is comes from the records of ``utils/tasks.py``. Import the submodules directly; nothing
is loaded here.
"""
